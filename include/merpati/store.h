/*
 * merpati/store.h - the store kind: the mailstore API through which the
 * POP3 and IMAP modules read and change mail, so that storage backends
 * can be swapped without touching the protocol modules.
 *
 * ABI 1 reserves the kind; its operations are appended by the mailstore
 * work (see docs/modules.md), which is why the table starts with its size.
 */
#ifndef MERPATI_STORE_H
#define MERPATI_STORE_H

#include <merpati/module.h>

struct mp_store_ops {
	uint32_t struct_size;
};

#endif
