/*
 * modules/milter/milter_proto.h - the Sendmail milter protocol, version 6,
 * as pure functions: packets the MTA sends, the replies it reads, the
 * option negotiation, SMTP reply texts a milter supplies, socket specs.
 * No I/O here (milter_io.c does that) and no module state (milter.c).
 *
 * A packet on the wire is a 32-bit length in network order (counting
 * the command octet and the data), one command octet, then the data.
 * Facts taken from Sendmail's libmilter documentation and Postfix's
 * MILTER_README; the code is merpati's own.
 */
#ifndef MILTER_PROTO_H
#define MILTER_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define MILTER_VERSION 6
/* The largest body chunk an MTA sends (libmilter's MILTER_CHUNK_SIZE). */
#define MILTER_CHUNK 65535
/* The largest reply packet we accept: a 64 KiB chunk and a margin for a
 * long header; anything longer is a broken or hostile milter. */
#define MILTER_MAX_PACKET (MILTER_CHUNK + 4096)

/* Commands, MTA to milter. */
enum milter_cmd {
	SMFIC_ABORT = 'A', SMFIC_BODY = 'B', SMFIC_CONNECT = 'C',
	SMFIC_MACRO = 'D', SMFIC_BODYEOB = 'E', SMFIC_HELO = 'H',
	SMFIC_QUIT_NC = 'K', SMFIC_HEADER = 'L', SMFIC_MAIL = 'M',
	SMFIC_EOH = 'N', SMFIC_OPTNEG = 'O', SMFIC_QUIT = 'Q',
	SMFIC_RCPT = 'R', SMFIC_DATA = 'T', SMFIC_UNKNOWN = 'U'
};

/* Replies, milter to MTA. */
enum milter_rsp {
	SMFIR_ADDRCPT = '+', SMFIR_DELRCPT = '-', SMFIR_ADDRCPT_PAR = '2',
	SMFIR_SHUTDOWN = '4', SMFIR_ACCEPT = 'a', SMFIR_REPLBODY = 'b',
	SMFIR_CONTINUE = 'c', SMFIR_DISCARD = 'd', SMFIR_CHGFROM = 'e',
	SMFIR_CONN_FAIL = 'f', SMFIR_ADDHEADER = 'h', SMFIR_INSHEADER = 'i',
	SMFIR_SETSYMLIST = 'l', SMFIR_CHGHEADER = 'm', SMFIR_PROGRESS = 'p',
	SMFIR_QUARANTINE = 'q', SMFIR_REJECT = 'r', SMFIR_SKIP = 's',
	SMFIR_TEMPFAIL = 't', SMFIR_REPLYCODE = 'y', SMFIR_OPTNEG = 'O'
};

/* Actions a milter may ask for (SMFIF_*). */
enum {
	SMFIF_ADDHDRS = 0x01, SMFIF_CHGBODY = 0x02, SMFIF_ADDRCPT = 0x04,
	SMFIF_DELRCPT = 0x08, SMFIF_CHGHDRS = 0x10, SMFIF_QUARANTINE = 0x20,
	SMFIF_CHGFROM = 0x40, SMFIF_ADDRCPT_PAR = 0x80, SMFIF_SETSYMLIST = 0x100
};
/* Everything this client carries out. */
#define MILTER_ACTIONS 0x1ffu

/* Protocol steps a milter may switch off or answer without a reply. */
enum {
	SMFIP_NOCONNECT = 0x01, SMFIP_NOHELO = 0x02, SMFIP_NOMAIL = 0x04,
	SMFIP_NORCPT = 0x08, SMFIP_NOBODY = 0x10, SMFIP_NOHDRS = 0x20,
	SMFIP_NOEOH = 0x40, SMFIP_NR_HDR = 0x80, SMFIP_NOUNKNOWN = 0x100,
	SMFIP_NODATA = 0x200, SMFIP_SKIP = 0x400, SMFIP_RCPT_REJ = 0x800,
	SMFIP_NR_CONN = 0x1000, SMFIP_NR_HELO = 0x2000, SMFIP_NR_MAIL = 0x4000,
	SMFIP_NR_RCPT = 0x8000, SMFIP_NR_DATA = 0x10000,
	SMFIP_NR_UNKN = 0x20000, SMFIP_NR_EOH = 0x40000,
	SMFIP_NR_BODY = 0x80000, SMFIP_HDR_LEADSPC = 0x100000
};
/* What this client offers: every NO* and NR_* step and SKIP; not
 * RCPT_REJ (refused recipients never reach a filter), not LEADSPC, not
 * the larger chunk sizes. */
#define MILTER_PROTOCOL 0x000ff7ffu

/* Macro stages (SMFIM_*), the index of a SETSYMLIST list. */
enum milter_stage {
	MILTER_AT_CONNECT, MILTER_AT_HELO, MILTER_AT_MAIL, MILTER_AT_RCPT,
	MILTER_AT_DATA, MILTER_AT_EOM, MILTER_AT_EOH, MILTER_STAGES
};

/* ---- building packets ----------------------------------------------- */

/* A packet under construction in caller memory; a write that does not
 * fit sets overflow and is dropped, so callers check once at the end. */
struct milter_pkt {
	unsigned char *buf;
	size_t cap, len;
	int overflow;
};

/* Start a packet for cmd in buf (cap octets, at least 5). */
void milter_pkt_begin(struct milter_pkt *p, unsigned char *buf, size_t cap,
    char cmd);
void milter_pkt_u32(struct milter_pkt *p, uint32_t v);
void milter_pkt_u16(struct milter_pkt *p, uint16_t v);
void milter_pkt_byte(struct milter_pkt *p, unsigned char c);
void milter_pkt_bytes(struct milter_pkt *p, const void *v, size_t n);
/* s and its terminating NUL. */
void milter_pkt_str(struct milter_pkt *p, const char *s);
/* Write the length prefix; returns the packet's total size, or 0 when
 * something did not fit. */
size_t milter_pkt_end(struct milter_pkt *p);

/* ---- reading replies ------------------------------------------------ */

/* The length prefix of a reply: 0 and *len_r (command + data octets),
 * or -1 when it is 0 or over MILTER_MAX_PACKET. */
int milter_frame_len(const unsigned char hdr[4], size_t *len_r);

/*
 * One parsed reply. Strings point into the packet given to the parser,
 * which stays owned by the caller; the parser checks that each is
 * NUL-terminated inside the packet.
 */
struct milter_reply {
	char code;			/* enum milter_rsp */
	uint32_t index;			/* INSHEADER, CHGHEADER */
	const char *name;		/* header name */
	const char *value;		/* header value, address, reason, reply */
	const char *args;		/* CHGFROM / ADDRCPT_PAR ESMTP args or NULL */
	const unsigned char *data;	/* REPLBODY chunk */
	size_t data_len;
};

/*
 * Parse one reply packet (pkt: the command octet and its data, len
 * octets). 0, or -1 with *error_r saying what is wrong (unknown reply,
 * missing or unterminated field, a header name that is empty or holds
 * ':' or white space). OPTNEG is parsed by milter_optneg_parse.
 */
int milter_reply_parse(const unsigned char *pkt, size_t len,
    struct milter_reply *r, const char **error_r);

/* A milter's answer to SMFIC_OPTNEG. */
struct milter_optneg {
	uint32_t version, actions, protocol;
	/* SETSYMLIST: the macros wanted at each stage (space separated,
	 * pointing into the packet), NULL where the milter said nothing. */
	const char *symlist[MILTER_STAGES];
};

/*
 * Parse the OPTNEG reply (pkt as above, starting with 'O'). Refuses a
 * version below 2, a short packet, a stage out of range or a list
 * without its NUL. 0, or -1 with *error_r.
 */
int milter_optneg_parse(const unsigned char *pkt, size_t len,
    struct milter_optneg *o, const char **error_r);

/* 1 when name (given as "j" or "{j}") is in the space separated list
 * wanted, or when wanted is NULL (the milter asked for no list). */
int milter_macro_wanted(const char *wanted, const char *name);

/*
 * A milter's SMTP reply (SMFIR_REPLYCODE), "550 5.7.1 text" or a
 * multi-line one "550-5.7.1 a\r\n550 5.7.1 b": *code_r (4xx or 5xx),
 * the enhanced code when one is there ("" if not), the text of all
 * lines joined with a space and cut to text_size. 0, or -1 when the
 * code is missing, not 4xx/5xx, or differs between lines.
 */
int milter_replycode_parse(const char *reply, int *code_r, char *enhanced,
    size_t enhanced_size, char *text, size_t text_size);

/* An address as a milter gives it, "<a@b>" or "a@b", into out without
 * the angle brackets. 0, or -1 if it has CR, LF, NUL-less junk or does
 * not fit. */
int milter_addr_unwrap(const char *in, char *out, size_t size);

/* ---- the message as a milter sees it --------------------------------- */

/*
 * Cuts the body out of a message fed in pieces: the header section is
 * skipped up to its empty line, and bare LF becomes CRLF (the line
 * ending milters expect). Zero-initialise, then feed.
 */
struct milter_body_cut {
	int in_body;	/* past the empty line */
	int at_blank;	/* the header line so far is empty (or a CR) */
	int prev_cr;	/* the last body octet was CR */
	int started;
};

/* Feed n octets; the body octets among them go to out (room for 2n),
 * their count is returned. */
size_t milter_body_cut(struct milter_body_cut *c, const char *in, size_t n,
    char *out);

/*
 * The next header field of a header section (sec, len octets; *pos
 * advances, starting at 0). The name goes to name (cut to name_size),
 * the value to value, leading white space removed, folded lines kept
 * with LF as their line ending, cut to value_size. A line without a
 * colon is skipped. Returns 1 for a field, 0 at the end of the section.
 */
int milter_header_next(const char *sec, size_t len, size_t *pos, char *name,
    size_t name_size, char *value, size_t value_size);

/* ---- sockets --------------------------------------------------------- */

/* Where a milter listens. */
struct milter_addr {
	int unix_socket;	/* 1: path, else host and port */
	char path[108];		/* sizeof(sun_path) */
	char host[256];
	unsigned port;
};

/*
 * Parse a socket as Postfix and Sendmail write it: "unix:/path",
 * "local:/path", "/path", "inet:host:port", "inet:port@host",
 * "inet6:host:port" (the host may be in [brackets]). 0, or -1 with
 * *error_r.
 */
int milter_addr_parse(const char *spec, struct milter_addr *a,
    const char **error_r);

#endif
