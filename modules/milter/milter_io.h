/*
 * modules/milter/milter_io.h - talking to one milter over its socket:
 * connect, send a packet, read a reply packet, each bounded by a
 * timeout. Blocking sockets driven through poll(); no protocol logic.
 */
#ifndef MILTER_IO_H
#define MILTER_IO_H

#include <stddef.h>
#include <sys/socket.h>

#include "milter_proto.h"

/*
 * The socket address for a; hosts must be numeric (or "localhost"):
 * nothing here asks the system resolver. 0, or -1 with *error_r.
 */
int milter_io_sockaddr(const struct milter_addr *a,
    struct sockaddr_storage *ss, socklen_t *len_r, const char **error_r);

/* A connected socket (fd >= 0), or -1 with *error_r. */
int milter_io_connect(const struct milter_addr *a, int timeout_ms,
    const char **error_r);

/* Send all of buf within timeout_ms. 0, or -1 with *error_r. */
int milter_io_send(int fd, const void *buf, size_t len, int timeout_ms,
    const char **error_r);

/*
 * Read one packet within timeout_ms into buf (at least
 * MILTER_MAX_PACKET octets): the command octet and its data, *len_r
 * octets. 0, or -1 with *error_r (timeout, closed, over-long packet).
 */
int milter_io_recv(int fd, unsigned char *buf, size_t *len_r,
    int timeout_ms, const char **error_r);

#endif
