/*
 * tests/fuzz/fuzz_queue_file.c - libFuzzer target: the queue file
 * reader (envelope, added headers, status file). The input is a queue
 * file, optionally followed by "\0ST\0" and its .st status file; both
 * are written to a private queue directory and loaded. Any outcome but
 * a crash, a leak or an overrun is fine: a corrupt file says why.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue.h"

#define ID "006B04A30FE33F96E196"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char qdir[64];

static void
put(const char *name, const uint8_t *data, size_t size)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", qdir, name);
	if ((f = fopen(path, "w")) == NULL)
		abort();
	fwrite(data, 1, size, f);
	fclose(f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *st = memmem(data, size, "\0ST\0", 4);
	size_t head = st ? (size_t)(st - data) : size;
	struct mp_qmsg m;
	char err[256] = "";
	int rc;

	if (!qdir[0]) {
		snprintf(qdir, sizeof(qdir), "/tmp/fuzz-queue-XXXXXX");
		if (mkdtemp(qdir) == NULL)
			abort();
	}
	put(ID, data, head);
	if (st)
		put(ID ".st", st + 4, size - head - 4);
	else {
		char path[128];
		snprintf(path, sizeof(path), "%s/%s.st", qdir, ID);
		unlink(path);
	}
	rc = mp_queue_load(qdir, ID, &m, err, sizeof(err));
	if (rc == -2 && !err[0])
		abort();	/* a corrupt file always says why */
	if (rc == 0)
		mp_qmsg_free(&m);
	return 0;
}
