/*
 * core/notify.c - the sd_notify(3) protocol in a few lines: systemd
 * passes a datagram socket address in $NOTIFY_SOCKET and reads
 * newline-separated VAR=value assignments from it (wire format as
 * documented in sd_notify(3)); no libsystemd is linked.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"

static int notify_fd = -1;

int
mp_notify_open(char *err, size_t errsize)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	socklen_t salen;
	size_t len;
	int fd;

	if (path == NULL || path[0] == '\0')
		return 0;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa.sun_path)) {
		snprintf(err, errsize, "NOTIFY_SOCKET=%s is neither an absolute "
		    "path nor an abstract name (@...) that fits a socket address",
		    path);
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';	/* abstract namespace: exactly len bytes */
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
	    (path[0] == '/'));
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, salen) < 0) {
		snprintf(err, errsize, "cannot connect to NOTIFY_SOCKET %s: %s",
		    path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	notify_fd = fd;
	return 0;
}

void
mp_notify(const char *state)
{
	if (notify_fd >= 0)
		(void)!send(notify_fd, state, strlen(state), MSG_NOSIGNAL);
}
