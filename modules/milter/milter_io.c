/*
 * modules/milter/milter_io.c - socket I/O with a milter (milter_io.h).
 * Every wait is poll() against one deadline per call, so a milter that
 * trickles octets cannot stretch a command past its timeout.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "milter_io.h"

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for events on fd until deadline: 1 ready, 0 timed out, -1 error. */
static int
wait_fd(int fd, short events, long long deadline)
{
	for (;;) {
		long long left = deadline - now_ms();
		struct pollfd p = { .fd = fd, .events = events };
		if (left <= 0)
			return 0;
		int rc = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
		if (rc > 0)
			return 1;
		if (rc < 0 && errno != EINTR)
			return -1;
	}
}

int
milter_io_sockaddr(const struct milter_addr *a, struct sockaddr_storage *ss,
    socklen_t *len_r, const char **error_r)
{
	memset(ss, 0, sizeof(*ss));
	if (a->unix_socket) {
		struct sockaddr_un *un = (struct sockaddr_un *)ss;
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, a->path, strlen(a->path) + 1);
		*len_r = sizeof(*un);
		return 0;
	}
	const char *host = strcmp(a->host, "localhost") == 0 ? "127.0.0.1" : a->host;
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((unsigned short)a->port);
		*len_r = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((unsigned short)a->port);
		*len_r = sizeof(*in6);
		return 0;
	}
	*error_r = "socket: the host must be an IP address";
	return -1;
}

int
milter_io_connect(const struct milter_addr *a, int timeout_ms,
    const char **error_r)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, err = 0;
	socklen_t errlen = sizeof(err);

	if (milter_io_sockaddr(a, &ss, &len, error_r) < 0)
		return -1;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		*error_r = "cannot create a socket";
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
		if (errno != EINPROGRESS) {
			*error_r = errno == ECONNREFUSED || errno == ENOENT ?
			    "connection refused" : "cannot connect";
			close(fd);
			return -1;
		}
		if (wait_fd(fd, POLLOUT, now_ms() + timeout_ms) <= 0) {
			*error_r = "connect timed out";
			close(fd);
			return -1;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) < 0 || err) {
			*error_r = err == ECONNREFUSED ? "connection refused" :
			    "cannot connect";
			close(fd);
			return -1;
		}
	}
	return fd;
}

int
milter_io_send(int fd, const void *buf, size_t len, int timeout_ms,
    const char **error_r)
{
	const char *p = buf;
	long long deadline = now_ms() + timeout_ms;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_fd(fd, POLLOUT, deadline) > 0)
				continue;
			*error_r = "write timed out";
			return -1;
		}
		*error_r = "connection lost while writing";
		return -1;
	}
	return 0;
}

/* Exactly len octets before deadline. */
static int
read_full(int fd, unsigned char *buf, size_t len, long long deadline,
    const char **error_r)
{
	while (len > 0) {
		ssize_t n = recv(fd, buf, len, 0);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n == 0) {
			*error_r = "connection closed by the milter";
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			*error_r = "connection lost while reading";
			return -1;
		}
		if (wait_fd(fd, POLLIN, deadline) <= 0) {
			*error_r = "timed out waiting for the milter";
			return -1;
		}
	}
	return 0;
}

int
milter_io_recv(int fd, unsigned char *buf, size_t *len_r, int timeout_ms,
    const char **error_r)
{
	long long deadline = now_ms() + timeout_ms;
	unsigned char hdr[4];

	if (read_full(fd, hdr, sizeof(hdr), deadline, error_r) < 0)
		return -1;
	if (milter_frame_len(hdr, len_r) < 0) {
		*error_r = "reply packet empty or too long";
		return -1;
	}
	return read_full(fd, buf, *len_r, deadline, error_r);
}
