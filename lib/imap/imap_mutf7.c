/*
 * imap_mutf7.c - modified UTF-7 mailbox names (RFC 3501 5.1.3) to and from
 * UTF-8.  Decoding is strict: a name has exactly one spelling, so a server
 * cannot make two different byte strings look like the same folder to us
 * (encoded printable ASCII, stray bits and lone surrogates are refused).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "imap_util.h"

/* RFC 3501: base64 with ',' in place of '/', and no '=' padding. */
static const char mutf7_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int
mutf7_b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == ',')
		return 63;
	return -1;
}

static void
mutf7_put_utf8(char *out, size_t *o, uint32_t cp)
{
	unsigned char *d = (unsigned char *)out + *o;

	if (cp < 0x80) {
		d[0] = (unsigned char)cp;
		*o += 1;
	} else if (cp < 0x800) {
		d[0] = (unsigned char)(0xc0 | cp >> 6);
		d[1] = (unsigned char)(0x80 | (cp & 0x3f));
		*o += 2;
	} else if (cp < 0x10000) {
		d[0] = (unsigned char)(0xe0 | cp >> 12);
		d[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		d[2] = (unsigned char)(0x80 | (cp & 0x3f));
		*o += 3;
	} else {
		d[0] = (unsigned char)(0xf0 | cp >> 18);
		d[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		d[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		d[3] = (unsigned char)(0x80 | (cp & 0x3f));
		*o += 4;
	}
}

/* One UTF-16 unit of a shifted run; *high holds a pending high surrogate. */
static int
mutf7_unit(uint32_t u, uint32_t *high, char *out, size_t *o)
{
	uint32_t cp;

	if (*high != 0) {
		if (u < 0xdc00 || u > 0xdfff)
			return -EINVAL;
		cp = 0x10000 + ((*high - 0xd800) << 10) + (u - 0xdc00);
		*high = 0;
	} else if (u >= 0xd800 && u <= 0xdbff) {
		*high = u;
		return 0;
	} else if (u >= 0xdc00 && u <= 0xdfff)
		return -EINVAL;
	else
		cp = u;
	/* Printable ASCII must represent itself; NUL is never a name byte. */
	if (cp == 0 || (cp >= 0x20 && cp <= 0x7e))
		return -EINVAL;
	mutf7_put_utf8(out, o, cp);
	return 0;
}

/* Decode "&...-" starting at in[*pos] == '&'. */
static int
mutf7_shift(const char *in, size_t len, size_t *pos, char *out, size_t *o)
{
	uint32_t bits = 0, high = 0;
	unsigned nbits = 0, nunits = 0;
	size_t i;
	int v, r;

	for (i = *pos + 1; i < len && in[i] != '-'; i++) {
		if ((v = mutf7_b64val((unsigned char)in[i])) < 0)
			return -EINVAL;
		bits = bits << 6 | (uint32_t)v;
		nbits += 6;
		if (nbits >= 16) {
			nbits -= 16;
			r = mutf7_unit(bits >> nbits & 0xffff, &high, out, o);
			if (r < 0)
				return r;
			bits &= (1u << nbits) - 1;
			nunits++;
		}
	}
	/* Unterminated, a whole spare character, non-zero padding bits, or
	 * a high surrogate left without its partner. */
	if (i == len || nbits >= 6 || bits != 0 || high != 0 || nunits == 0)
		return -EINVAL;
	*pos = i + 1;
	return 0;
}

int
imap_mutf7_decode(const char *in, size_t len, char **ret)
{
	size_t i = 0, o = 0;
	char *out;

	/* UTF-8 never needs more than two bytes per input byte here. */
	if (len > (SIZE_MAX - 1) / 2)
		return -EINVAL;
	if ((out = malloc(2 * len + 1)) == NULL)
		return -ENOMEM;
	while (i < len) {
		unsigned char c = (unsigned char)in[i];

		if (c < 0x20 || c > 0x7e)
			goto bad;
		if (c != '&') {
			out[o++] = (char)c;
			i++;
		} else if (i + 1 < len && in[i + 1] == '-') {
			out[o++] = '&';
			i += 2;
		} else if (mutf7_shift(in, len, &i, out, &o) < 0)
			goto bad;
	}
	out[o] = '\0';
	*ret = out;
	return 0;
bad:
	free(out);
	return -EINVAL;
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static int
mutf7_utf8_next(const unsigned char *s, size_t len, size_t *pos,
    uint32_t *ret)
{
	size_t i = *pos, n, k;
	uint32_t cp, min;

	if (s[i] < 0x80) {
		n = 1, cp = s[i], min = 0;
	} else if (s[i] >= 0xc2 && s[i] <= 0xdf) {
		n = 2, cp = s[i] & 0x1f, min = 0x80;
	} else if (s[i] >= 0xe0 && s[i] <= 0xef) {
		n = 3, cp = s[i] & 0x0f, min = 0x800;
	} else if (s[i] >= 0xf0 && s[i] <= 0xf4) {
		n = 4, cp = s[i] & 0x07, min = 0x10000;
	} else
		return -EINVAL;
	if (len - i < n)
		return -EINVAL;
	for (k = 1; k < n; k++) {
		if ((s[i + k] & 0xc0) != 0x80)
			return -EINVAL;
		cp = cp << 6 | (s[i + k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -EINVAL;
	*pos = i + n;
	*ret = cp;
	return 0;
}

struct mutf7_enc {
	char	*out;
	size_t	 o;
	uint32_t bits;
	unsigned nbits;
	bool	 shifted;
};

static void
mutf7_emit(struct mutf7_enc *e, uint32_t unit)
{
	e->bits = e->bits << 16 | unit;
	e->nbits += 16;
	while (e->nbits >= 6) {
		e->nbits -= 6;
		e->out[e->o++] = mutf7_b64[e->bits >> e->nbits & 0x3f];
	}
	e->bits &= (1u << e->nbits) - 1;
}

/* Close a shifted run: the last bits padded with zeros, then '-'. */
static void
mutf7_unshift(struct mutf7_enc *e)
{
	if (!e->shifted)
		return;
	if (e->nbits > 0)
		e->out[e->o++] = mutf7_b64[(e->bits << (6 - e->nbits)) & 0x3f];
	e->out[e->o++] = '-';
	e->bits = e->nbits = 0;
	e->shifted = false;
}

static void
mutf7_encode_cp(struct mutf7_enc *e, uint32_t cp)
{
	if (cp >= 0x20 && cp <= 0x7e) {
		mutf7_unshift(e);
		e->out[e->o++] = (char)cp;
		if (cp == '&')
			e->out[e->o++] = '-';
		return;
	}
	if (!e->shifted) {
		e->out[e->o++] = '&';
		e->shifted = true;
	}
	if (cp >= 0x10000) {
		cp -= 0x10000;
		mutf7_emit(e, 0xd800 | cp >> 10);
		mutf7_emit(e, 0xdc00 | (cp & 0x3ff));
	} else
		mutf7_emit(e, cp);
}

int
imap_mutf7_encode(const char *utf8, char **ret)
{
	const unsigned char *s = (const unsigned char *)utf8;
	struct mutf7_enc e = { 0 };
	size_t len = strlen(utf8), i = 0;
	uint32_t cp;

	/* Worst case: "a\x01" repeated, each control byte becomes "&AAE-". */
	if (len > (SIZE_MAX - 1) / 5)
		return -EINVAL;
	if ((e.out = malloc(5 * len + 1)) == NULL)
		return -ENOMEM;
	while (i < len) {
		if (mutf7_utf8_next(s, len, &i, &cp) < 0) {
			free(e.out);
			return -EINVAL;
		}
		mutf7_encode_cp(&e, cp);
	}
	mutf7_unshift(&e);
	e.out[e.o] = '\0';
	*ret = e.out;
	return 0;
}
