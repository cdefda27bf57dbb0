/*
 * util.c - checked number parsing, durations, hex and display escaping.
 * Everything here is pure and bounded; it is the first line of defence
 * against numbers and names that come from servers and config files.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "util.h"

static int
parse_dec(const char *s, size_t len, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		d = (unsigned)(s[i] - '0');
		if (v > (max - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*ret = v;
	return 0;
}

int
parse_u32(const char *s, size_t len, uint32_t *ret)
{
	uint64_t v;
	int r;

	r = parse_dec(s, len, UINT32_MAX, &v);
	if (r < 0)
		return r;
	*ret = (uint32_t)v;
	return 0;
}

int
parse_u64(const char *s, size_t len, uint64_t *ret)
{
	return parse_dec(s, len, UINT64_MAX, ret);
}

static int
unit_ms(char c, uint64_t *ret)
{
	switch (c) {
	case 's': *ret = 1000ULL; return 0;
	case 'm': *ret = 60ULL * 1000; return 0;
	case 'h': *ret = 3600ULL * 1000; return 0;
	case 'd': *ret = 86400ULL * 1000; return 0;
	default: return -EINVAL;
	}
}

int
parse_duration_ms(const char *s, uint64_t *ret)
{
	uint64_t total = 0;

	if (s == NULL || *s == '\0')
		return -EINVAL;
	while (*s != '\0') {
		size_t n = strspn(s, "0123456789");
		uint64_t v, unit;
		int r;

		if (n == 0 || s[n] == '\0')
			return -EINVAL;
		if ((r = parse_u64(s, n, &v)) < 0)
			return r;
		if (unit_ms(s[n], &unit) < 0)
			return -EINVAL;
		if (v > UINT64_MAX / unit || total > UINT64_MAX - v * unit)
			return -ERANGE;
		total += v * unit;
		s += n + 1;
	}
	*ret = total;
	return 0;
}

int
parse_size(const char *s, uint64_t *ret)
{
	size_t n;
	uint64_t v, mul = 1;
	int r;

	if (s == NULL)
		return -EINVAL;
	n = strspn(s, "0123456789");
	if ((r = parse_u64(s, n, &v)) < 0)
		return r;
	switch (s[n]) {
	case '\0': break;
	case 'K': case 'k': mul = 1ULL << 10; break;
	case 'M': case 'm': mul = 1ULL << 20; break;
	case 'G': case 'g': mul = 1ULL << 30; break;
	default: return -EINVAL;
	}
	if (s[n] != '\0' && s[n + 1] != '\0' &&
	    !((s[n + 1] == 'B' || s[n + 1] == 'i') && s[n + 2] == '\0'))
		return -EINVAL;
	if (v > UINT64_MAX / mul)
		return -ERANGE;
	*ret = v * mul;
	return 0;
}

void
hex_encode(const uint8_t *data, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[data[i] >> 4];
		out[2 * i + 1] = digits[data[i] & 0xf];
	}
	out[2 * len] = '\0';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
hex_decode(const char *hex, uint8_t *out, size_t len)
{
	size_t i;

	if (strlen(hex) != 2 * len)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/*
 * The length of the well-formed UTF-8 sequence at `s` (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF) that is safe to
 * show, or 0.  Not safe: the C1 controls U+0080-U+009F (U+009B is a CSI
 * to some terminals), the line and paragraph separators U+2028-U+2029 and
 * the bidirectional overrides U+202A-U+202E and U+2066-U+2069, which can
 * make a line read otherwise than it is.
 */
static size_t
str_utf8_shown(const unsigned char *s, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	if (s[0] == 0xc2 && s[1] <= 0x9f)
		return 0;
	if (s[0] == 0xe2 && s[1] == 0x80 && s[2] >= 0xa8 && s[2] <= 0xae)
		return 0;
	if (s[0] == 0xe2 && s[1] == 0x81 && s[2] >= 0xa6 && s[2] <= 0xa9)
		return 0;
	return len;
}

void
str_escape(char *dst, size_t dstlen, const void *src, size_t srclen)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *s = src;
	size_t i = 0, o = 0;

	if (dstlen == 0)
		return;
	while (i < srclen) {
		unsigned char c = s[i];
		char tmp[5];
		size_t n = 1, take = 1;

		if (c == '\\') {
			memcpy(tmp, "\\\\", 3);
			n = 2;
		} else if (c >= 0x20 && c < 0x7f) {
			tmp[0] = (char)c;
		} else if (c >= 0x80 &&
		    (take = str_utf8_shown(s + i, srclen - i)) > 0) {
			memcpy(tmp, s + i, take);
			n = take;
		} else {
			/* A control byte, or a byte of no safe character. */
			tmp[0] = '\\';
			tmp[1] = 'x';
			tmp[2] = digits[c >> 4];
			tmp[3] = digits[c & 0xf];
			n = 4;
			take = 1;
		}
		if (o + n >= dstlen)
			break;
		memcpy(dst + o, tmp, n);
		o += n;
		i += take;
	}
	dst[o] = '\0';
}

char *
xstrdup_or_null(const char *s)
{
	return s == NULL ? NULL : strdup(s);
}

void
secret_free(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

void
time_iso8601(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL) {
		strcpy(out, "invalid-time");
		return;
	}
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
