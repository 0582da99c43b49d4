/*
 * modules/imap/imap_parse.h - the IMAP command parser (RFC 3501 9): a
 * tokenizer for atoms, quoted strings, literals ({n} and {n+}, already
 * read into the command buffer), parenthesised lists and NIL, with
 * limits on argument count and nesting, and sequence sets. Pure, so it
 * is unit-tested and fuzzed on its own.
 */
#ifndef MERPATI_IMAP_PARSE_H
#define MERPATI_IMAP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define IMAP_MAX_ARGS 512
#define IMAP_MAX_DEPTH 8

enum imap_arg_type { IMAP_ATOM, IMAP_STRING, IMAP_LIST, IMAP_NIL };

struct imap_arg {
	enum imap_arg_type type;
	const char *s;		/* ATOM/STRING/NIL text (NUL-terminated copy;
				 * "NIL" for NIL, "" for a LIST) */
	size_t len;
	struct imap_arg *list;	/* LIST: first child */
	size_t nlist;
};

struct imap_cmd {
	char tag[64];
	char name[32];		/* upper-cased; "UID FETCH" style for UID */
	struct imap_arg *args;	/* top-level arguments */
	size_t nargs;
	/* storage */
	struct imap_arg pool[IMAP_MAX_ARGS];
	size_t used;
	char *text;		/* copies of strings, owned */
};

/*
 * Parse a complete command (literals inline as "{n}\r\n<n bytes>").
 * 0, or -1 with a reason in *why (the reply is "tag BAD why"); the tag
 * is filled whenever it could be read, so the BAD can carry it.
 */
int imap_parse(const char *buf, size_t len, struct imap_cmd *cmd, const char **why);
void imap_cmd_free(struct imap_cmd *cmd);

/* The tag a reply to this (possibly cut or malformed) line carries:
 * its leading tag, or "*" when it has none. */
void imap_tag_of(const char *line, size_t len, char *tag, size_t size);

/* Literal announced at the end of a line: its size, or -1 if none.
 * *plus is set for the non-synchronising {n+} form (RFC 7888). More
 * than 12 digits is still a literal, of LLONG_MAX octets, so that it
 * is refused as too big: taken for no literal, the bytes a client sends
 * after "{0000000000005+}" would run as commands. */
long long imap_literal_size(const char *line, size_t len, int *plus);

struct imap_range {
	uint32_t lo, hi;
};

/*
 * Parse a sequence set ("1:3,5,7:*") with '*' meaning max. Ranges are
 * normalised (lo <= hi). 0, or -1 when malformed or over max_ranges.
 */
int imap_seqset(const char *s, uint32_t max, struct imap_range *out,
    size_t max_ranges, size_t *n_r);

/* 1 if n is in the set. */
int imap_in_set(const struct imap_range *r, size_t n, uint32_t value);

/* Quote s for output as an IMAP string: "..." or a literal {n}. */
void imap_quote(const char *s, char *out, size_t size);

#endif
