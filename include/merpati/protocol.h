/*
 * merpati/protocol.h - the protocol kind: a listener service (POP3,
 * IMAP). The core binds the sockets named in the module's `listen`
 * group, owns TLS, and runs one session per connection; the module
 * speaks the protocol through the connection calls.
 *
 * ABI 1 reserves the kind; the session calls are appended by the POP3
 * work (see docs/modules.md).
 */
#ifndef MERPATI_PROTOCOL_H
#define MERPATI_PROTOCOL_H

#include <merpati/module.h>

struct mp_conn;		/* opaque: one client connection */

struct mp_protocol_ops {
	uint32_t struct_size;
	const char *protocol;	/* "pop3", "imap" */
	/* Serve one connection until it ends. Runs in its own thread. */
	void (*session)(void *ctx, struct mp_conn *conn);
};

#endif
