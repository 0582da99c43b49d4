/*
 * core/protocol.h - sessions of protocol modules (POP3, IMAP): the
 * connection handle they get (struct mp_conn) and the host's conn_*
 * calls over core/conn.c.
 */
#ifndef MERPATI_PROTOCOL_CORE_H
#define MERPATI_PROTOCOL_CORE_H

#include <merpati/merpati.h>

#include "settings.h"

/* Serve one accepted connection with l's protocol module. */
void mp_protocol_session_run(int fd, const struct mp_listen *l);

int mp_host_conn_read_line(struct mp_conn *c, char *buf, size_t size,
    size_t *len_r);
ssize_t mp_host_conn_read(struct mp_conn *c, void *buf, size_t size);
int mp_host_conn_write(struct mp_conn *c, const void *buf, size_t len);
int mp_host_conn_printf(struct mp_conn *c, const char *fmt, ...) MP_PRINTF(2, 3);
int mp_host_conn_flush(struct mp_conn *c);
size_t mp_host_conn_pending(struct mp_conn *c);
int mp_host_conn_start_tls(struct mp_conn *c);
const struct mp_conn_info *mp_host_conn_info(struct mp_conn *c);
int mp_host_conn_wait(struct mp_conn *c, int other_fd, int timeout_ms);
void mp_host_conn_set_timeout(struct mp_conn *c, long long seconds);

/* An address as text (unknown if not IP), and whether it is loopback. */
void mp_address_text(const struct sockaddr_storage *ss, char *out, size_t size,
    int *loopback);
/* The peer's address as text, and whether it is loopback. */
void mp_peer_address(int fd, char *out, size_t size, int *loopback);

#endif
