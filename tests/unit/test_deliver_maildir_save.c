/*
 * tests/unit/test_deliver_maildir_save.c - the save path's writer
 * (maildir_save_write): CRLF in, LF on disk, the wire size counted, for
 * messages larger than its buffer, read in pieces of every awkward size,
 * with a CR split from its LF across reads, a lone CR before a read
 * with no CR at all (the LF form one byte longer than the read), and a
 * failed write reported.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../modules/deliver_maildir/maildir_store.h"
#include "test.h"

struct chunks {
	const char *text;
	size_t len, pos, step;
};

static ssize_t
chunks_read(struct mp_reader *r, void *buf, size_t len)
{
	struct chunks *c = r->priv;
	size_t n = c->len - c->pos;

	if (n > len)
		n = len;
	if (c->step && n > c->step)
		n = c->step;
	memcpy(buf, c->text + c->pos, n);
	c->pos += n;
	return (ssize_t)n;
}

static char path[] = "/tmp/merpati-test-save-XXXXXX";

/* Save text through the writer (reads of at most step octets); the
 * file's bytes in *out (malloc'ed), its size in *out_len. */
static int
save(const char *prefix, const char *text, size_t len, size_t step,
    uint64_t *vsize, char **out, size_t *out_len)
{
	struct chunks c = { text, len, 0, step };
	struct mp_reader r = { sizeof(r), chunks_read, (off_t)len, &c };
	int fd = open(path, O_RDWR | O_TRUNC), rc;
	struct stat st;

	if (fd < 0)
		return -1;
	rc = maildir_save_write(fd, prefix, &r, vsize);
	fstat(fd, &st);
	*out_len = (size_t)st.st_size;
	*out = malloc(*out_len + 1);
	if (pread(fd, *out, *out_len, 0) != (ssize_t)*out_len)
		rc = -1;
	close(fd);
	return rc;
}

/* The expected file: CRLF pairs become LF, everything else stays. */
static char *
lf_form(const char *prefix, const char *text, size_t len, size_t *n)
{
	char *out = malloc(strlen(prefix) + len + 1);
	size_t o = strlen(prefix);

	memcpy(out, prefix, o);
	for (size_t i = 0; i < len; i++)
		if (!(text[i] == '\r' && i + 1 < len && text[i + 1] == '\n'))
			out[o++] = text[i];
	*n = o;
	return out;
}

/* The file as served: each LF not after a CR gains one (counted here
 * byte by byte, the simple way). */
static uint64_t
wire_size(const char *file, size_t n)
{
	uint64_t size = n;

	for (size_t i = 0; i < n; i++)
		size += file[i] == '\n' && (i == 0 || file[i - 1] != '\r');
	return size + (n > 0 && file[n - 1] != '\n' ? 2 : 0);
}

/* A message of lines of varying length, CRLF ended, some with a lone
 * CR inside, about size octets. */
static char *
make_message(size_t size, size_t *len)
{
	char *m = malloc(size + 200);
	size_t o = 0;

	for (int line = 0; o < size; line++) {
		int n = 1 + (line * 37) % 97;
		for (int i = 0; i < n; i++)
			m[o++] = (char)('a' + (line + i) % 26);
		if (line % 11 == 5)
			m[o++] = '\r';	/* a lone CR stays */
		m[o++] = '\r';
		m[o++] = '\n';
	}
	*len = o;
	return m;
}

static void
test_large_in_pieces(void)
{
	static const size_t steps[] = { 0, 1, 7, 4095, 4097, 16383, 16384 };
	const char *prefix = "Return-Path: <a@b.test>\nDelivered-To: c@d.test\n";
	size_t len, want_len;
	char *msg = make_message(300 * 1024, &len);
	int ok_bytes = 1, ok_size = 1, ok_rc = 1;

	size_t cut = 100000;	/* byte by byte: the first 100 KB only */
	while (msg[cut - 1] != '\n')
		cut--;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		size_t use = steps[i] == 1 ? cut : len;
		uint64_t vsize = 0;
		char *got, *lf;
		size_t got_len;
		lf = lf_form(prefix, msg, use, &want_len);
		ok_rc &= save(prefix, msg, use, steps[i], &vsize, &got, &got_len) == 0;
		ok_bytes &= got_len == want_len && memcmp(got, lf, want_len) == 0;
		ok_size &= vsize == wire_size(lf, want_len);
		free(got);
		free(lf);
	}
	CHECK("large messages saved whatever the read size", ok_rc);
	CHECK("the file is the LF form, byte for byte", ok_bytes);
	CHECK("the wire size is counted across buffers", ok_size);
	free(msg);
}

static void
test_lone_cr_before_a_full_read(void)
{
	size_t len = 16384 * 3;
	char *msg = malloc(len), *got;
	size_t got_len;
	uint64_t vsize = 0;

	memset(msg, 'x', len);
	msg[16383] = '\r';	/* last octet of the first read */
	msg[2 * 16384 - 1] = '\r';
	int rc = save("", msg, len, 16384, &vsize, &got, &got_len);
	CHECK("a lone CR then a read without CR", rc == 0 && got_len == len &&
	    memcmp(got, msg, len) == 0);
	CHECK("no line end: the wire ends the last line", vsize == len + 2);
	free(got);
	free(msg);
}

static void
test_split_crlf(void)
{
	const char *text = "a\r\nb\r\n";
	char *got;
	size_t got_len;
	uint64_t vsize = 0;

	int rc = save("", text, strlen(text), 2, &vsize, &got, &got_len);
	CHECK("CR and LF in different reads make one LF", rc == 0 &&
	    got_len == 4 && memcmp(got, "a\nb\n", 4) == 0 && vsize == 6);
	free(got);
	rc = save("", "a\r", 2, 0, &vsize, &got, &got_len);
	CHECK("a CR at the very end stays", rc == 0 && got_len == 2 &&
	    memcmp(got, "a\r", 2) == 0 && vsize == 4);
	free(got);
}

static void
test_write_error(void)
{
	struct chunks c = { "abc\r\n", 5, 0, 0 };
	struct mp_reader r = { sizeof(r), chunks_read, 5, &c };
	int fd = open(path, O_RDONLY);

	CHECK("a failed write is an error",
	    maildir_save_write(fd, NULL, &r, NULL) == -1 && errno == EBADF);
	close(fd);
}

int
main(void)
{
	int fd = mkstemp(path);

	if (fd < 0)
		return 1;
	close(fd);
	test_large_in_pieces();
	test_lone_cr_before_a_full_read();
	test_split_crlf();
	test_write_error();
	unlink(path);
	TEST_EXIT();
}
