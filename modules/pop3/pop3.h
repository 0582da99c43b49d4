/*
 * modules/pop3/pop3.h - private to the POP3 module: its settings and
 * the session entry point.
 */
#ifndef MERPATI_POP3_H
#define MERPATI_POP3_H

#include <merpati/merpati.h>

struct pop3_settings {
	int plaintext_auth;	/* USER/PASS/AUTH without TLS from loopback */
	long long timeout;	/* idle seconds (RFC 1939: at least 10 min) */
	long long auth_failures;/* before the connection is closed */
	long long errors;	/* bad commands before the connection is closed */
};

struct pop3_module {
	const struct mp_host *host;
	struct pop3_settings set;
};

void pop3_session(void *ctx, struct mp_conn *conn);

#endif
