/*
 * core/notify.h - tell a service manager (systemd's Type=notify) how
 * start-up and shutdown go, without libsystemd.
 */
#ifndef MERPATI_NOTIFY_H
#define MERPATI_NOTIFY_H

/*
 * Connect a datagram socket to the AF_UNIX address in $NOTIFY_SOCKET (a
 * path, or "@name" for the abstract namespace). Called while still root
 * so that the privilege drop or Landlock cannot keep the later messages
 * from reaching it. 0 (also when no NOTIFY_SOCKET is set), or -1 with
 * the reason in err.
 */
int mp_notify_open(char *err, size_t errsize);

/* Send state ("READY=1", "STOPPING=1") when mp_notify_open connected;
 * best effort: a service manager gone away is not the daemon's problem. */
void mp_notify(const char *state);

#endif
