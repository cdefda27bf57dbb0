/*
 * imap_util.h - pieces of IMAP that are pure functions: modified UTF-7
 * mailbox names (RFC 3501 5.1.3), quoting of command arguments, UID sets
 * kept as ranges (never expanded: "1:4294967295" is two numbers).
 */
#ifndef MAILSTOW_IMAP_UTIL_H
#define MAILSTOW_IMAP_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;

/*
 * Decode a modified UTF-7 mailbox name to UTF-8.  -EINVAL for invalid
 * input (bad base64, unterminated shift, surrogates that do not pair,
 * encoded printable ASCII, NUL); *ret is malloc'ed on success.
 */
int	imap_mutf7_decode(const char *in, size_t len, char **ret);
/* Encode UTF-8 to modified UTF-7. -EINVAL for invalid UTF-8 or NUL. */
int	imap_mutf7_encode(const char *utf8, char **ret);

/*
 * Append `s` (len bytes) to `out` as an IMAP astring argument: an atom
 * when every byte is an atom char, a quoted string when it has only
 * 7-bit printable bytes, else -EINVAL (the caller needs a literal; CR, LF
 * and NUL can never be sent in a quoted string).
 */
int	imap_quote(struct evbuffer *out, const char *s, size_t len);
/* Would imap_quote() accept it? */
bool	imap_quotable(const char *s, size_t len);

/* A set of UIDs as sorted, non-overlapping, non-adjacent ranges. */
struct imap_uidset {
	struct imap_uid_range { uint32_t lo, hi; } *r;
	size_t	 n, cap;
};
void	imap_uidset_init(struct imap_uidset *);
void	imap_uidset_clear(struct imap_uidset *);
/* Add lo..hi (any order of calls); merges.  -ENOMEM. */
int	imap_uidset_add(struct imap_uidset *, uint32_t lo, uint32_t hi);
/* Number of UIDs (64-bit: a set may cover 2^32-1). */
uint64_t imap_uidset_count(const struct imap_uidset *);
/*
 * Parse "1:5,7,9:*" (sequence-set, RFC 3501); '*' is replaced by `star`.
 * UID 0 is an error.  At most `max_ranges` ranges.  -EINVAL / -E2BIG.
 */
int	imap_uidset_parse(struct imap_uidset *, const char *s, size_t len,
	    uint32_t star, size_t max_ranges);
/* Append the set as "1:5,7" to `out`. */
int	imap_uidset_format(const struct imap_uidset *, struct evbuffer *out);

#endif
