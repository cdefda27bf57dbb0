/*
 * imap_parser_private.h - what the two halves of the IMAP response parser
 * share: the framing half (imap_parser.c) collects the bytes of one
 * response, the building half (imap_parser_build.c) turns them into a
 * struct imap_response.  Nothing here is visible outside lib/imap.
 */
#ifndef MAILSTOW_IMAP_PARSER_PRIVATE_H
#define MAILSTOW_IMAP_PARSER_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap_parser.h"

#define IMAP_TAG_MAX		64	/* our tags are "a1".."a99999" */
#define IMAP_SECTION_MAX	255	/* longest section hint for begin() */

enum imap_pstate {
	IMAP_P_LINE,		/* collecting bytes of a line */
	IMAP_P_LITERAL,		/* inside a literal announced by {n} */
	IMAP_P_DONE,		/* a response was returned; reset on next feed */
	IMAP_P_FAILED,		/* unusable; p->err says why */
};

/* A literal of the current response, in order of appearance. */
struct imap_lit {
	size_t	 brace;		/* offset of its '{' in the line buffer */
	size_t	 end;		/* offset just past its '}' */
	bool	 streamed;	/* handed to the callbacks, not kept */
	uint64_t size;
	size_t	 data;		/* offset in the literal buffer (inline) */
};

/* The head of a response, found on its first line. */
struct imap_hdr {
	enum imap_rtype type;
	enum imap_status status;
	size_t	 tag_off, tag_len;
	bool	 has_number;
	uint32_t number;
	size_t	 kw_off, kw_len;
	size_t	 rest;		/* first byte after keyword and space */
};

enum imap_tkind {
	IMAP_T_ATOM, IMAP_T_NIL, IMAP_T_QUOTED, IMAP_T_LIT, IMAP_T_OPEN,
	IMAP_T_CLOSE,
};

/* A token: a span of the line buffer, a literal, or a parenthesis. */
struct imap_tok {
	enum imap_tkind kind;
	size_t	 off, len;	/* ATOM, NIL, QUOTED (inside the quotes) */
	size_t	 n;		/* OPEN: number of items; LIT: index */
};

struct imap_parser {
	struct imap_limits lim;
	struct imap_literal_ops ops;
	bool	 use_ops;
	void	*arg;
	enum imap_pstate state;
	int	 err;
	uint64_t nresp;		/* responses returned, for error texts */

	/* Non-literal bytes of the response, line ends removed. */
	char	*line;
	size_t	 llen, lcap;
	size_t	 lstart;	/* where the current line began */
	bool	 cr;		/* last byte seen was CR */
	bool	 classified;	/* hdr is valid (first line complete) */
	struct imap_hdr hdr;
	bool	 in_fetch;
	char	 section[IMAP_SECTION_MAX + 1];

	/* Literals: the side table and the bytes of inline ones. */
	struct imap_lit *lits;
	size_t	 nlits, litcap;
	char	*data;
	size_t	 dlen, dcap;
	uint64_t lit_left;

	/* Tokenizer output and the finished response. */
	struct imap_tok *toks;
	size_t	 ntok, tokcap;
	size_t	 nitems;
	size_t	*stack;
	size_t	 stackcap;
	struct imap_value *vals;
	char	*strs;
	struct imap_response resp;

	char	 errbuf[448];
};

/* Record an error (message formatted like printf, trusted args only). */
int	imap_parser_fail(struct imap_parser *, int err, size_t off,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Grow *buf to hold `need` elements of `size`, never above `limit`. */
int	imap_parser_grow(void **buf, size_t *cap, size_t need, size_t size,
	    size_t limit);
/* Parse the head of the response from the first `n` line bytes. */
int	imap_parser_head(struct imap_parser *, size_t n, struct imap_hdr *);
/* Tokenize the complete response and fill p->resp. */
int	imap_parser_build(struct imap_parser *);

/*
 * Bytes we accept in atoms.  RFC 3501 ATOM-CHAR excludes also '%', '*'
 * and 8-bit bytes; servers send those in mailbox names and flags, and
 * refusing them would fail a session over a name, so they are let in.
 * ']' is an atom byte (ASTRING-CHAR) except inside a response code.
 */
static inline bool
imap_atom_byte(unsigned char c, bool in_code)
{
	if (c <= 0x20 || c == 0x7f)
		return false;
	switch (c) {
	case '(': case ')': case '{': case '"': case '\\':
		return false;
	case ']':
		return !in_code;
	default:
		return true;
	}
}

#endif
