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
 * must loop. Use as { mock_text_read, size, &t }. */
struct mock_text {
	const char *text;
	size_t pos, step;
};
ssize_t mock_text_read(struct mp_reader *r, void *buf, size_t len);

/* Log lines the module wrote, concatenated (for assertions). */
const char *mock_log_text(void);

#endif
