/*
 * merpati/protocol.h - the protocol kind: a listener service (POP3,
 * IMAP). The core binds the sockets named in the module's `listen`
 * group, e.g.
 *     pop3 = { listen = { plain = { address = "127.0.0.1"; port = 1100; };
 *                         tls   = { address = "127.0.0.1"; port = 9950; }; }; };
 * (a listener named "tls" speaks implicit TLS; others offer STARTTLS
 * through conn_start_tls; `tls = "none"|"starttls"|"implicit"` in a
 * listener overrides), owns TLS and the connection limits, and runs one
 * session per connection in its own thread. The module speaks the
 * protocol through the host's conn_* calls (module.h).
 */
#ifndef MERPATI_PROTOCOL_H
#define MERPATI_PROTOCOL_H

#include <merpati/module.h>

/* Results of host->conn_read_line. */
enum mp_conn_result {
	MP_CONN_OK = 1,
	MP_CONN_EOF = 0,
	MP_CONN_ERROR = -1,	/* I/O error or timeout */
	MP_CONN_TOO_LONG = -2	/* the line was over the limit and skipped;
				 * its start is left in the buffer */
};

/* What a session may know about its connection. */
struct mp_conn_info {
	uint32_t struct_size;
	const char *peer;	/* client IP address */
	int loopback;		/* peer is 127.0.0.0/8 or ::1 */
	int tls;		/* TLS is active */
	const char *tls_desc;	/* "TLSv1.3 with cipher ..." or "" */
	int starttls;		/* the listener offers STARTTLS (STLS in POP3) */
	const char *listener;	/* "pop3.plain" */
};

struct mp_protocol_ops {
	uint32_t struct_size;
	const char *protocol;	/* "pop3", "imap" */
	/* Serve one connection until it ends. Runs in its own thread;
	 * many sessions run concurrently. */
	void (*session)(void *ctx, struct mp_conn *conn);
};

#endif
