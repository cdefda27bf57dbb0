/*
 * mime_rfc2047.c - decoding RFC 2047 encoded-words ("=?utf-8?B?...?=")
 * in Subject and in display names, for the charsets UTF-8, US-ASCII and
 * ISO-8859-1 (any other is left as it stands), and the UTF-8 clean-up
 * that every index field goes through last.
 */
#include <string.h>
#include <strings.h>

#include "mime_private.h"

enum mime_charset { MC_NONE, MC_UTF8, MC_ASCII, MC_LATIN1 };

struct mime_out {
	char	*p;
	size_t	 len, cap;
};

/* An encoded-word found at the start of a string (RFC 2047 2). */
struct mime_ew {
	enum mime_charset charset;
	char		 enc;		/* 'B' or 'Q' */
	const char	*text;
	size_t		 textlen;
	size_t		 total;		/* bytes of the whole word */
};

static void
mime_put(struct mime_out *o, const void *p, size_t n)
{
	if (n > o->cap - o->len)
		n = o->cap - o->len;
	if (n == 0)
		return;
	memcpy(o->p + o->len, p, n);
	o->len += n;
}

static void
mime_putc(struct mime_out *o, unsigned char c)
{
	mime_put(o, &c, 1);
}

static enum mime_charset
mime_charset(const char *cs, size_t len)
{
	static const struct {
		const char *name;
		enum mime_charset cs;
	} names[] = {
		{ "utf-8", MC_UTF8 }, { "utf8", MC_UTF8 },
		{ "us-ascii", MC_ASCII }, { "ascii", MC_ASCII },
		{ "iso-8859-1", MC_LATIN1 }, { "iso8859-1", MC_LATIN1 },
		{ "iso_8859-1", MC_LATIN1 }, { "latin1", MC_LATIN1 },
	};
	const char *star;
	size_t i;

	/* RFC 2231 5: "utf-8*en" names a language after the charset. */
	if ((star = memchr(cs, '*', len)) != NULL)
		len = (size_t)(star - cs);
	for (i = 0; i < sizeof names / sizeof *names; i++)
		if (strlen(names[i].name) == len &&
		    strncasecmp(names[i].name, cs, len) == 0)
			return names[i].cs;
	return MC_NONE;
}

/* "=?charset?enc?text?=" at s; false unless complete and decodable. */
static bool
mime_ew_parse(const char *s, size_t len, struct mime_ew *ew)
{
	const char *cs, *q, *end = s + len;

	if (len < 8 || s[0] != '=' || s[1] != '?')
		return false;
	cs = s + 2;
	for (q = cs; q < end && *q != '?'; q++)
		if ((unsigned char)*q <= ' ' || (unsigned char)*q >= 0x7f)
			return false;
	if (q == cs || end - q < 5)
		return false;
	ew->charset = mime_charset(cs, (size_t)(q - cs));
	ew->enc = (char)(q[1] & ~0x20);
	if (ew->charset == MC_NONE || (ew->enc != 'B' && ew->enc != 'Q') ||
	    q[2] != '?')
		return false;
	ew->text = q + 3;
	for (q = ew->text; q < end && *q != '?'; q++)
		if (*q == ' ' || *q == '\t')
			return false;
	if (end - q < 2 || q[1] != '=')
		return false;
	ew->textlen = (size_t)(q - ew->text);
	ew->total = (size_t)(q + 2 - s);
	return true;
}

static int
mime_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c & ~0x20);
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
mime_b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decode B or Q text into buf (at least textlen bytes); -1 if invalid. */
static long
mime_ew_bytes(const struct mime_ew *ew, unsigned char *buf)
{
	unsigned bits = 0, nbits = 0;
	size_t i, n = 0;
	int v, lo;

	for (i = 0; i < ew->textlen; i++) {
		char c = ew->text[i];

		if (ew->enc == 'Q') {
			/* RFC 2047 4.2: "_" is a space, "=XX" a byte. */
			if (c == '_')
				buf[n++] = ' ';
			else if (c == '=' && i + 2 < ew->textlen &&
			    (v = mime_hexval(ew->text[i + 1])) >= 0 &&
			    (lo = mime_hexval(ew->text[i + 2])) >= 0) {
				buf[n++] = (unsigned char)(v << 4 | lo);
				i += 2;
			} else
				buf[n++] = (unsigned char)c;
			continue;
		}
		if (c == '=')
			break;	/* padding ends the data */
		if ((v = mime_b64val(c)) < 0)
			return -1;
		bits = (bits << 6 | (unsigned)v) & 0xffffff;
		if ((nbits += 6) >= 8) {
			nbits -= 8;
			buf[n++] = (unsigned char)(bits >> nbits);
		}
	}
	return (long)n;
}

/* Append decoded bytes, as UTF-8 where the charset says how. */
static void
mime_ew_put(const struct mime_ew *ew, const unsigned char *buf, size_t n,
    struct mime_out *o)
{
	size_t i;

	if (ew->charset != MC_LATIN1) {
		/* UTF-8 as is; bad bytes and non-ASCII "US-ASCII" are
		 * replaced by mime_utf8_clean() later.  Not checked here so
		 * that a character split across two words joins up again. */
		mime_put(o, buf, n);
		return;
	}
	for (i = 0; i < n; i++) {
		if (buf[i] < 0x80)
			mime_putc(o, buf[i]);
		else {
			mime_putc(o, (unsigned char)(0xc0 | buf[i] >> 6));
			mime_putc(o, (unsigned char)(0x80 | (buf[i] & 0x3f)));
		}
	}
}

/* In an address field, a word must stand between these. */
static bool
mime_ew_boundary(char c, bool before)
{
	return c == ' ' || c == '\t' || c == '"' || c == ',' ||
	    (before ? c == '(' : c == ')');
}

struct mime_dec {
	struct mime_out	 out;
	const char	*ws;		/* whitespace not yet written */
	size_t		 wslen;
	bool		 prev_ew;	/* last token was an encoded-word */
	bool		 quoted, angle;
};

static void
mime_flush_ws(struct mime_dec *d, bool drop)
{
	if (!drop)
		mime_put(&d->out, d->ws, d->wslen);
	d->wslen = 0;
}

/* Try an encoded-word at in[i]; its length if decoded, else 0. */
static size_t
mime_try_ew(struct mime_dec *d, const char *in, size_t len, size_t i,
    bool structured)
{
	unsigned char buf[MIME_FIELD_MAX];
	struct mime_ew ew;
	long n;

	if (d->angle || !mime_ew_parse(in + i, len - i, &ew))
		return 0;
	if (structured && ((i > 0 && !mime_ew_boundary(in[i - 1], true)) ||
	    (i + ew.total < len && !mime_ew_boundary(in[i + ew.total], false))))
		return 0;
	if (ew.textlen > sizeof buf || (n = mime_ew_bytes(&ew, buf)) < 0)
		return 0;
	/* RFC 2047 6.2: whitespace between two encoded-words is dropped. */
	mime_flush_ws(d, d->prev_ew);
	mime_ew_put(&ew, buf, (size_t)n, &d->out);
	d->prev_ew = true;
	return ew.total;
}

static void
mime_track(struct mime_dec *d, char c, bool structured)
{
	if (!structured)
		return;
	if (c == '"' && !d->angle)
		d->quoted = !d->quoted;
	else if (c == '<' && !d->quoted)
		d->angle = true;
	else if (c == '>' && !d->quoted)
		d->angle = false;
}

size_t
mime_decode_words(const char *in, size_t len, char *out, size_t cap,
    bool structured)
{
	struct mime_dec d = { .out = { out, 0, cap } };
	size_t i = 0, n;

	while (i < len) {
		if (in[i] == ' ' || in[i] == '\t') {
			mime_flush_ws(&d, false);
			d.ws = in + i;
			for (n = i; n < len && (in[n] == ' ' || in[n] == '\t'); n++)
				;
			d.wslen = n - i;
			i = n;
			continue;
		}
		if (in[i] == '=' && (n = mime_try_ew(&d, in, len, i,
		    structured)) > 0) {
			i += n;
			continue;
		}
		mime_flush_ws(&d, false);
		mime_track(&d, in[i], structured);
		/* A quoted-pair keeps its second character literal. */
		if (structured && d.quoted && in[i] == '\\' && i + 1 < len)
			mime_putc(&d.out, (unsigned char)in[i++]);
		mime_putc(&d.out, (unsigned char)in[i++]);
		d.prev_ew = false;
	}
	mime_flush_ws(&d, false);
	return d.out.len;
}

size_t
mime_utf8_len(const unsigned char *p, size_t n)
{
	unsigned cp;
	size_t len, i;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		cp = p[0] & 0x1fu;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		cp = p[0] & 0x0fu;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		cp = p[0] & 0x07u;
	} else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3fu);
	}
	/* Overlong forms, surrogates and values past U+10FFFF. */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

size_t
mime_utf8_clean(const char *in, size_t len, char *out, size_t max)
{
	static const char fffd[] = "\xef\xbf\xbd";
	const unsigned char *p = (const unsigned char *)in;
	size_t i = 0, o = 0, n, start;
	const char *src;

	while (i < len) {
		n = mime_utf8_len(p + i, len - i);
		src = in + i;
		if (n == 0) {
			src = fffd;
			n = 3;
			i++;
		} else
			i += n;
		if (n == 1 && *src == '\t')
			src = " ";
		else if ((n == 1 && ((unsigned char)*src < 0x20 || *src == 0x7f)) ||
		    (n == 2 && (unsigned char)src[0] == 0xc2 &&
		    (unsigned char)src[1] < 0xa0))
			continue;	/* C0, DEL, C1 */
		if (n > max - o)
			break;
		memcpy(out + o, src, n);
		o += n;
	}
	for (start = 0; start < o && out[start] == ' '; start++)
		;
	memmove(out, out + start, o - start);
	o -= start;
	while (o > 0 && out[o - 1] == ' ')
		o--;
	return o;
}
