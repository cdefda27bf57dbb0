/*
 * imap_quote.c - writes command arguments as IMAP atoms or quoted strings
 * (RFC 3501 section 4).  It is the one place that decides how a user name,
 * a password or a mailbox name goes on the wire, so it refuses what it
 * cannot send safely (CR, LF, NUL, 8-bit) instead of mangling it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "imap_util.h"

/* ATOM-CHAR: printable ASCII except atom-specials and ']'. */
static bool
quote_atom_byte(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("(){ %*\"\\]", c) == NULL;
}

bool
imap_quotable(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c > 0x7e)
			return false;
	}
	return true;
}

static bool
quote_is_atom(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return false;
	/* An atom NIL could be read as "no value" where nstring is allowed. */
	if (len == 3 && strncasecmp(s, "NIL", 3) == 0)
		return false;
	for (i = 0; i < len; i++)
		if (!quote_atom_byte((unsigned char)s[i]))
			return false;
	return true;
}

int
imap_quote(struct evbuffer *out, const char *s, size_t len)
{
	size_t i, o = 0;
	char *q;
	int r;

	if (!imap_quotable(s, len))
		return -EINVAL;
	if (quote_is_atom(s, len))
		return evbuffer_add(out, s, len) < 0 ? -ENOMEM : 0;
	/* Built whole, then added once: no half-written argument on error. */
	if (len > (SIZE_MAX - 2) / 2 || (q = malloc(2 * len + 2)) == NULL)
		return -ENOMEM;
	q[o++] = '"';
	for (i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\')
			q[o++] = '\\';
		q[o++] = s[i];
	}
	q[o++] = '"';
	r = evbuffer_add(out, q, o) < 0 ? -ENOMEM : 0;
	free(q);
	return r;
}
