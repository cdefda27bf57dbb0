/*
 * mime.h - reading fields of an RFC 5322 message header for the index
 * (and, later, for multidrop routing).  Bounded: header count, line length
 * and field length have limits; nothing here trusts its input.
 */
#ifndef MAILSTOW_MIME_H
#define MAILSTOW_MIME_H

#include <stddef.h>

struct mime_fields {
	/* UTF-8, unfolded, RFC 2047 encoded-words decoded where the RFC
	 * allows them (Subject, display names); control bytes removed;
	 * each at most 998 bytes; NULL when absent. */
	char	*message_id;
	char	*date;
	char	*from;
	char	*to;
	char	*subject;
};

/*
 * Parse the header block `hdr` (up to the first empty line or `len`).
 * Missing fields stay NULL; a malformed header is not an error (the message
 * is archived anyway).  0, or -ENOMEM.  Free with mime_fields_free().
 */
int	mime_header_fields(const char *hdr, size_t len, struct mime_fields *ret);
void	mime_fields_free(struct mime_fields *);

/*
 * The unfolded value of the first field `name` (case-insensitive), raw
 * bytes, malloc'ed, or NULL if absent. At most `max` bytes are kept.
 */
char	*mime_header_get(const char *hdr, size_t len, const char *name, size_t max);

#endif
