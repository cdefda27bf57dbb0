/*
 * pop3_parser.h - I/O-free pieces of POP3 (RFC 1939, RFC 2449, RFC 5034):
 * taking one bounded line from an evbuffer, the "+OK" / "-ERR" status line
 * with its RFC 2449 response code, the lines of multi-line listings (CAPA,
 * UIDL, LIST, STAT), and the byte-level dot decoder that turns a RETR
 * reply into the message bytes.  Nothing here touches a socket, so every
 * function is tested a byte at a time and fuzzed.
 */
#ifndef MAILSTOW_POP3_PARSER_H
#define MAILSTOW_POP3_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;

/*
 * RFC 2449 allows 512 octets for a status line and 255 for a
 * multi-line listing line; real servers stray, so both get 8 KiB.
 */
#define POP3_MAX_LINE		8192
/* RFC 1939 7: a unique-id is 1 to 70 characters 0x21-0x7E. */
#define POP3_MAX_UIDL		70
/* Longest response code kept ("SYS/TEMP", "LOGIN-DELAY", ...). */
#define POP3_MAX_CODE		128

/*
 * Take one line from `in` into `buf` (without its LF and an optional CR
 * before it; NUL-terminated).  Returns 1 with *ret_len set and the line
 * drained from `in`; 0 when no whole line is buffered yet; -EMSGSIZE when
 * the line is, or already would be, longer than bufsize - 1 bytes;
 * -EPROTO when it holds a NUL byte.  After an error nothing is drained.
 */
int	pop3_line_take(struct evbuffer *in, char *buf, size_t bufsize,
	    size_t *ret_len);

enum pop3_status_kind {
	POP3_OK,		/* "+OK" */
	POP3_ERR,		/* "-ERR" */
	POP3_CONT,		/* "+" or "+ challenge": SASL (RFC 5034 4) */
};

/*
 * A status line.  Pointers borrow from the parsed line.  `code` is the RFC
 * 2449 response code without brackets ("SYS/TEMP"), NULL when there is
 * none; `text` is the rest of the line after the code and one space (for
 * POP3_CONT: the challenge).
 */
struct pop3_status {
	enum pop3_status_kind kind;
	const char *code;
	size_t	 code_len;
	const char *text;
	size_t	 text_len;
};

/*
 * Parse a status line (as pop3_line_take() returns it).  The indicator
 * is matched case-insensitively and must end the line or be followed by a
 * space.  A "[" that does not open a well-formed code (RFC 2449 9:
 * levels of 0x21-0x7E without "/" and "]", joined by "/") is plain text.
 * 0, or -EPROTO when the line is neither +OK, -ERR nor a continuation.
 */
int	pop3_status_parse(const char *line, size_t len, struct pop3_status *ret);

/*
 * The RFC 1939 APOP timestamp in a greeting's text: the first "<...>"
 * holding only 0x21-0x7E and at least one "@", at most 256 bytes with the
 * brackets.  0 with *ret_off / *ret_len (brackets included), or -ENOENT.
 */
int	pop3_apop_timestamp(const char *text, size_t len, size_t *ret_off,
	    size_t *ret_len);

/*
 * A line of a multi-line reply: returns 1 for the terminating "." (then
 * the reply is over), else removes the byte-stuffing dot in place (a
 * line starting with "." loses it, RFC 1939 3), updates *len and returns 0.
 */
int	pop3_multi_line(char *line, size_t *len);

enum pop3_cap {
	POP3_CAP_STLS		= 1 << 0,
	POP3_CAP_USER		= 1 << 1,
	POP3_CAP_SASL_PLAIN	= 1 << 2,
	POP3_CAP_PIPELINING	= 1 << 3,
	POP3_CAP_UIDL		= 1 << 4,
	POP3_CAP_TOP		= 1 << 5,
	POP3_CAP_RESP_CODES	= 1 << 6,
	POP3_CAP_SASL_XOAUTH2	= 1 << 7,
	POP3_CAP_SASL_OAUTHBEARER = 1 << 8,
};

/*
 * One line of a CAPA listing (RFC 2449 5): the capability tag and its
 * parameters, separated by any run of spaces or tabs, case-insensitive.
 * Returns the enum pop3_cap bits this line announces (0 for the others).
 */
unsigned pop3_capa_parse(const char *line, size_t len);

/*
 * "msgno arg" of a UIDL or LIST listing, or of "+OK count size" after
 * STAT: a decimal message number (1 or more), then the rest of the line
 * with the blanks (spaces, tabs) around it removed; `arg` may be empty.
 * 0, or -EPROTO for a missing or malformed number.
 */
int	pop3_listing_parse(const char *line, size_t len, uint32_t *ret_num,
	    const char **ret_arg, size_t *ret_arg_len);

/* A usable unique-id: 1-70 bytes, each 0x21-0x7E (RFC 1939 7). */
bool	pop3_uidl_valid(const char *uidl, size_t len);

/*
 * The text of "+OK nn mm" after STAT (RFC 1939 5): message count and
 * octet size; more text after them is ignored.  0 or -EPROTO.
 */
int	pop3_stat_parse(const char *text, size_t len, uint32_t *ret_count,
	    uint64_t *ret_size);

/*
 * The dot decoder of a multi-line reply (RFC 1939 3), fed with what
 * follows the "+OK" line.  A line that starts with "." loses that dot;
 * "." followed by CRLF at the start of a line ends the reply.  A line
 * starts at the beginning and after every LF.  Everything else, CR and
 * LF included, passes unchanged: the decoded bytes are exactly what lies
 * between the status line and the terminating ".CRLF", unstuffed, so a
 * message the server had to end with an added CRLF keeps that CRLF.
 * State is a few bytes; it survives any split of the input.
 */
struct pop3_dot {
	int	 state;
	bool	 done;
	uint64_t decoded;		/* bytes handed to the callback */
};

/* Receives decoded bytes in runs; 0, or a negative errno to stop. */
typedef int pop3_dot_out_fn(void *arg, const void *buf, size_t len);

void	pop3_dot_init(struct pop3_dot *);
/*
 * Decode `len` bytes.  Returns 1 when the terminator was seen, with
 * *ret_used = the bytes consumed up to and including it (what follows
 * belongs to the next reply); 0 when all `len` bytes were consumed and
 * more are needed (*ret_used = len); or the negative errno `out` returned
 * (then how much was consumed is unspecified: the reply is abandoned).
 * Feeding after the terminator returns -EINVAL.
 */
int	pop3_dot_feed(struct pop3_dot *, const void *buf, size_t len,
	    size_t *ret_used, pop3_dot_out_fn *out, void *arg);
/*
 * The input ended: 0 if the terminator was seen, else -EPROTO (the reply
 * is truncated and what was decoded must not be used).
 */
int	pop3_dot_eof(const struct pop3_dot *);

#endif
