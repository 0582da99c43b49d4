/*
 * merpati/filter.h - the filter kind: sees each message at the end of
 * DATA (DKIM, spam and virus checks). It may add headers, accept, reject
 * (5xx) or defer (4xx) with its own text. May run concurrently.
 */
#ifndef MERPATI_FILTER_H
#define MERPATI_FILTER_H

#include <merpati/module.h>

struct mp_filter_ops {
	uint32_t struct_size;
	/*
	 * MP_OK accepts (headers may have been added through
	 * add_header), MP_PERMFAIL rejects and MP_TEMPFAIL defers with
	 * status_r as the reply.
	 */
	int (*end_of_data)(void *ctx, struct mp_txn *txn,
	    const struct mp_envelope *env, struct mp_reader *msg,
	    int (*add_header)(struct mp_txn *txn, const char *name,
	        const char *value),
	    struct mp_status *status_r);
};

#endif
