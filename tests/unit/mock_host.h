/*
 * tests/unit/mock_host.h - a host table for module unit tests (STYLE.md:
 * "a mock host table for module unit tests"). Configuration comes from
 * an in-memory list of key/value strings instead of libconfig.
 */
#ifndef MERPATI_MOCK_HOST_H
#define MERPATI_MOCK_HOST_H

#include <merpati/merpati.h>

/* The mock's config group: { "key", "value", ..., NULL }. */
struct mp_conf {
	const char *const *kv;
	const char *base_dir;	/* relative MP_OPT_PATH values resolve here */
};

extern const struct mp_host mock_host;

/* A reader over a NUL-terminated text: { text, 0, step } hands out at
 * most step octets per read (0: as many as asked), to test callers that
 * must loop. Use as { sizeof(r), mock_text_read, size, &t }. */
struct mock_text {
	const char *text;
	size_t pos, step;
};
ssize_t mock_text_read(struct mp_reader *r, void *buf, size_t len);

/* Log lines the module wrote, concatenated (for assertions). */
const char *mock_log_text(void);

/*
 * A client connection for protocol sessions, fed from memory (unit
 * tests, fuzz targets). conn_read_line frames lines as the core's
 * conn.c does (CRLF or LF stripped; a line over the limit comes back
 * MP_CONN_TOO_LONG with its start and is skipped; a last line without
 * LF is EOF). Input is copied. When it is used up, reads see EOF and conn_wait
 * reports the client gone, the way a timeout ends a session. Output is
 * counted and its first keep octets kept. The peer is loopback,
 * without TLS and without STARTTLS.
 */
struct mp_conn *mock_conn_new(const void *input, size_t len, size_t keep);
void mock_conn_free(struct mp_conn *c);
/* An interactive client: when the session has read everything, refill
 * is called and may mock_conn_feed more (having looked at the output
 * so far, e.g. for a "+" continuation); when it adds nothing the input
 * has ended. */
typedef void mock_conn_refill(void *arg, struct mp_conn *c);
void mock_conn_source(struct mp_conn *c, mock_conn_refill *refill, void *arg);
void mock_conn_feed(struct mp_conn *c, const void *bytes, size_t len);
/* What the session wrote (at most keep octets, NUL-terminated) and how
 * much it wrote in all. */
const char *mock_conn_output(const struct mp_conn *c, size_t *kept_r);
size_t mock_conn_written(const struct mp_conn *c);
/* Everything the client sent. */
const char *mock_conn_input(const struct mp_conn *c, size_t *len_r);
/* Input octets not read yet. */
size_t mock_conn_unread(const struct mp_conn *c);
/* h, a copy of mock_host, with its conn_* calls served by mock_conn. */
void mock_conn_host(struct mp_host *h);

#endif
