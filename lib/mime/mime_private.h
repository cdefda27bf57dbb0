/*
 * mime_private.h - what the files of lib/mime share: the bounded field
 * scanner, unfolding, RFC 2047 decoding, the UTF-8 clean-up that makes
 * every index field valid, control-free UTF-8, and the address scanner
 * that the routing is built on.
 */
#ifndef MAILSTOW_MIME_PRIVATE_H
#define MAILSTOW_MIME_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include "mime.h"

#define MIME_MAX_FIELDS	1000	/* fields looked at before giving up */
#define MIME_FIELD_MAX	998	/* RFC 5322 2.1.1 line limit, as a field cap */

/* One field as it stands in the header: the value still folded. */
struct mime_field {
	const char	*name;
	size_t		 namelen;
	const char	*value;		/* after the colon */
	size_t		 valuelen;	/* up to the end of its last line */
};

struct mime_scan {
	const char	*p, *end;
	size_t		 nfields;
	size_t		 maxfields;	/* MIME_MAX_FIELDS unless changed */
};

void	mime_scan_init(struct mime_scan *, const char *hdr, size_t len);
/* The next field; false at the empty line, the end or `maxfields`. */
bool	mime_scan_next(struct mime_scan *, struct mime_field *);

/*
 * Unfold (drop line breaks that precede whitespace), drop NUL bytes, trim
 * surrounding whitespace, keep at most `max` bytes.  Returns the length.
 */
size_t	mime_unfold(const char *v, size_t len, char *out, size_t max);

/*
 * Decode RFC 2047 encoded-words of `in` into `out` (at most `cap` bytes,
 * output cut there).  `structured`: an address field, where words inside
 * <...> are left alone and a word must stand between delimiters.  The
 * result is raw bytes: run mime_utf8_clean() on it.  Returns the length.
 */
size_t	mime_decode_words(const char *in, size_t len, char *out, size_t cap,
	    bool structured);

/*
 * Valid UTF-8 from any bytes: bad bytes become U+FFFD, TAB becomes a
 * space, other C0 and C1 controls and DEL are removed, surrounding spaces
 * trimmed.  At most `max` bytes, cut at a character boundary.  Returns
 * the length; `out` is not NUL-terminated.
 */
size_t	mime_utf8_clean(const char *in, size_t len, char *out, size_t max);

/* Length of the valid UTF-8 sequence at p (1-4), 0 if it is not one. */
size_t	mime_utf8_len(const unsigned char *p, size_t n);

#define MIME_LOCAL_MAX	256	/* local part, unquoted (RFC 5321 4.5.3.1.1 says 64) */
#define MIME_DOMAIN_MAX	255	/* RFC 5321 4.5.3.1.2 */
/* "local"@domain with every local byte escaped, and the NUL. */
#define MIME_ADDR_MAX	(2 * MIME_LOCAL_MAX + 2 + 1 + MIME_DOMAIN_MAX + 1)

/* One parsed address, borrowed from the scanner for one callback. */
struct mime_addr {
	const char	*local;		/* content, unquoted, lower-case */
	size_t		 locallen;
	const char	*domain;	/* lower-case; "[...]" for a literal */
	size_t		 domainlen;
};

/*
 * Call `cb` for each address of the address-list `v` (see
 * mime_parse_addresses() for what is accepted).  `cb` returns 0 to go
 * on; any other value stops the scan and is returned.  Else 0.
 */
int	mime_addr_scan(const char *v, size_t len,
	    int (*cb)(const struct mime_addr *, void *), void *arg);

/* The same for the one "for" address of a Received field, if any. */
int	mime_received_scan(const char *v, size_t len,
	    int (*cb)(const struct mime_addr *, void *), void *arg);

/*
 * `a` as "local@domain" into `out` (MIME_ADDR_MAX bytes), the local part
 * quoted unless it is a dot-atom without "=?" in it.  Returns
 * the length; NUL-terminated.
 */
size_t	mime_addr_format(const struct mime_addr *a, char *out);

#endif
