/*
 * mime_private.h - what the files of lib/mime share: the bounded field
 * scanner, unfolding, RFC 2047 decoding and the UTF-8 clean-up that makes
 * every index field valid, control-free UTF-8.
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
	unsigned	 nfields;
};

void	mime_scan_init(struct mime_scan *, const char *hdr, size_t len);
/* The next field; false at the empty line, the end or the field limit. */
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

#endif
