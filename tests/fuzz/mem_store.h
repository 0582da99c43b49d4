/*
 * tests/fuzz/mem_store.h - a mailstore held in memory, for fuzzing the
 * IMAP session: one mailbox, the ops of merpati/store.h, no disk, no
 * clock, no threads. Deterministic: the same seed and calls give the
 * same results. Not a store for the daemon (no persistence, no
 * concurrency between handles beyond one thread).
 */
#ifndef MERPATI_MEM_STORE_H
#define MERPATI_MEM_STORE_H

#include <merpati/merpati.h>

/* A fresh store for user, seeded with a few folders and messages
 * (flags, keywords, a multipart MIME one); mem_store_free releases
 * it and everything opened from it. */
struct mp_store *mem_store_new(const char *user);
void mem_store_free(struct mp_store *st);

#endif
