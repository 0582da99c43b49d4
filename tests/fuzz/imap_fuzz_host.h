/*
 * tests/fuzz/imap_fuzz_host.h - what the IMAP fuzz targets share: one
 * whole IMAP session (the module as merpatid loads it) over a fuzz
 * input, against a fresh in-memory store (mem_store.h) and an auth
 * provider that knows one user, through mock_host's memory connection.
 */
#ifndef MERPATI_IMAP_FUZZ_HOST_H
#define MERPATI_IMAP_FUZZ_HOST_H

#include <stddef.h>

#include "../unit/mock_host.h"

#define FUZZ_USER "alice@example.test"
#define FUZZ_PASS "secret"

/*
 * Initialise the IMAP module with conf ({ "key", "value", ..., NULL }
 * of modules.imap), seed a store, serve input as one connection until
 * the session ends, and release it all but the connection, which holds
 * the first keep octets of output (mock_conn_output; free it with
 * mock_conn_free). refill, when not NULL, is an interactive client
 * (mock_conn_source) asked for more once input is used up. Aborts if
 * the module refuses conf.
 */
struct mp_conn *imap_fuzz_session(const char *const *conf, const void *input, size_t len,
    size_t keep, mock_conn_refill *refill, void *arg);

#endif
