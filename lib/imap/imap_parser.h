/*
 * imap_parser.h - an I/O-free, incremental parser of IMAP4rev1 server
 * responses (RFC 3501 section 7, RFC 9051).  It takes bytes from an
 * evbuffer and returns complete responses, or "need more", or an error.
 * It never reads a socket, so it is tested one byte at a time and fuzzed.
 *
 * Literals either stay in the response (small ones) or are streamed to the
 * owner's callbacks (message bodies), so memory does not grow with message
 * size.  Every input is bounded (struct imap_limits).
 */
#ifndef MAILSTOW_IMAP_PARSER_H
#define MAILSTOW_IMAP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct imap_parser;

struct imap_limits {
	size_t	 max_line;		/* bytes of one response outside
					 * literals, default 8 MiB */
	size_t	 max_inline_literal;	/* largest literal kept in memory,
					 * default 64 KiB */
	uint64_t max_literal;		/* largest literal at all (streamed),
					 * default 256 MiB */
	unsigned max_depth;		/* parenthesis nesting, default 32 */
	size_t	 max_items;		/* values in one response, default 2M */
};
/* Fill with the defaults above. */
void	imap_limits_default(struct imap_limits *);

enum imap_vtype {
	IMAP_V_ATOM,		/* also numbers, flags (\Seen), BODY[] */
	IMAP_V_STRING,		/* quoted string or in-memory literal */
	IMAP_V_NIL,
	IMAP_V_LIST,		/* ( ... ) */
	IMAP_V_STREAMED,	/* literal handed to the literal callbacks */
};

struct imap_value {
	enum imap_vtype type;
	/* ATOM, STRING: bytes and length; always NUL-terminated, but a
	 * literal may contain NULs, so `len` is the truth. */
	const char *str;
	size_t	 len;
	/* LIST */
	const struct imap_value *items;
	size_t	 n_items;
	/* STREAMED */
	uint64_t streamed_size;
};

enum imap_rtype {
	IMAP_R_TAGGED,		/* "a1 OK ..." */
	IMAP_R_UNTAGGED,	/* "* ..." */
	IMAP_R_CONTINUE,	/* "+ ..." */
};

enum imap_status {
	IMAP_ST_NONE,		/* a data response (CAPABILITY, LIST, FETCH...) */
	IMAP_ST_OK, IMAP_ST_NO, IMAP_ST_BAD, IMAP_ST_BYE, IMAP_ST_PREAUTH,
};

/*
 * A parsed response.  Borrowed from the parser: valid until the next call
 * of imap_parser_feed() or imap_parser_free().
 *
 * Tagged and untagged status responses (OK NO BAD BYE PREAUTH) have
 * `status`, optional `code` ("UIDVALIDITY", upper-cased) with `code_args`
 * (the values after the code atom up to ']', e.g. one atom "3857529045";
 * for CAPABILITY the capability atoms), and `text` (the rest of the line,
 * raw bytes, may be empty).
 * Untagged data: "* 23 EXISTS" has has_number/number 23 and keyword
 * "EXISTS"; "* 5 FETCH (...)" has number 5, keyword "FETCH" and args[0]
 * the list; "* CAPABILITY IMAP4rev1 ..." has keyword "CAPABILITY" and the
 * atoms in args; "* LIST (\HasNoChildren) "/" INBOX" has three args.
 * Keywords are upper-cased.  Continuation: `text` is the rest of the line.
 */
struct imap_response {
	enum imap_rtype type;
	const char *tag;		/* TAGGED only */
	enum imap_status status;
	bool	 has_number;
	uint32_t number;
	const char *keyword;		/* "" for status responses */
	const char *code;		/* NULL when no [CODE] */
	const struct imap_value *code_args;
	size_t	 n_code_args;
	const char *text;
	size_t	 text_len;
	const struct imap_value *args;
	size_t	 n_args;
};

/*
 * Streaming literals.  begin() is called when a literal of `size` bytes is
 * announced (size already checked against max_literal); `section` is the
 * atom just before it inside the current list ("BODY[]", "RFC822", or ""
 * when none) and `in_fetch` is true inside an untagged FETCH response.
 * Return 1 to stream it (data() then gets every byte, end() once), 0 to keep
 * it in memory (allowed only up to max_inline_literal, else the parse fails
 * with -EMSGSIZE), or a negative errno to fail the parse.  data()/end()
 * return 0 or a negative errno that fails the parse.
 */
struct imap_literal_ops {
	int	(*begin)(void *arg, uint64_t size, const char *section, bool in_fetch);
	int	(*data)(void *arg, const void *buf, size_t len);
	int	(*end)(void *arg);
};

/* ops may be NULL: then every literal is kept in memory (bounded). */
struct imap_parser *imap_parser_new(const struct imap_limits *,
	    const struct imap_literal_ops *ops, void *arg);
void	imap_parser_free(struct imap_parser *);

/*
 * Consume bytes from `in`.  Returns 1 with *ret set when a whole response
 * was parsed (call again: more may be buffered), 0 when all of `in` was
 * consumed and more is needed, or a negative errno: -EMSGSIZE a limit was
 * exceeded (also: inline literals of one response together above
 * max_line, a tag above 64 bytes), -EPROTO a syntax error (including NUL
 * or a bare CR outside a literal; a bare LF is taken as a line end), or
 * what a literal callback returned.  Bytes after a complete response stay
 * in `in`: the STARTTLS check depends on it.  A "{n}" at the end of a
 * status or continuation line is text, not a literal.  Codes other than
 * the well-known ones (UIDVALIDITY, UIDNEXT, CAPABILITY, ...) keep all
 * their arguments as one raw atom.  After an error the parser
 * is unusable; imap_parser_error() says what and where, with bytes escaped.
 */
int	imap_parser_feed(struct imap_parser *, struct evbuffer *in,
	    const struct imap_response **ret);
const char *imap_parser_error(const struct imap_parser *);

/* Helpers over values: */
/* ATOM or STRING equal to `s`, ASCII case-insensitively. */
bool	imap_value_is(const struct imap_value *, const char *s);
/* ATOM holding a decimal that fits. -EINVAL otherwise. */
int	imap_value_u32(const struct imap_value *, uint32_t *ret);
int	imap_value_u64(const struct imap_value *, uint64_t *ret);

#endif
