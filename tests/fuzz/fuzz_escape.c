/*
 * fuzz_escape.c - str_escape() on any bytes.  What it writes must be
 * NUL-terminated within the buffer, free of control bytes, well-formed
 * UTF-8 without C1 controls, separators or bidirectional overrides, and,
 * given room, turn back into exactly the input (nothing is lost or
 * invented by escaping).  A cut result must be a prefix of the full one.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Well-formed and safe: the same rules, written out independently. */
static size_t
fz_char_len(const unsigned char *s, size_t n)
{
	uint32_t cp;
	size_t len, i;

	if (s[0] < 0x80)
		return s[0] >= 0x20 && s[0] != 0x7f ? 1 : 0;
	len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc0 ? 2 : 0;
	if (len == 0 || len > n || s[0] > 0xf7)
		return 0;
	cp = s[0] & (0x7f >> len);
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
	    (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f) ||
	    (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069))
		return 0;
	return len;
}

/* Undo the escaping; -1 on anything str_escape() could not have made. */
static long
fz_unescape(const char *e, unsigned char *out)
{
	static const char hexd[] = "0123456789abcdef";
	size_t i = 0, o = 0;

	while (e[i] != '\0') {
		if (e[i] != '\\') {
			out[o++] = (unsigned char)e[i++];
			continue;
		}
		if (e[i + 1] == '\\') {
			out[o++] = '\\';
			i += 2;
			continue;
		}
		if (e[i + 1] != 'x' || e[i + 2] == '\0' || e[i + 3] == '\0' ||
		    strchr(hexd, e[i + 2]) == NULL ||
		    strchr(hexd, e[i + 3]) == NULL)
			return -1;
		out[o++] = (unsigned char)((strchr(hexd, e[i + 2]) - hexd) << 4 |
		    (strchr(hexd, e[i + 3]) - hexd));
		i += 4;
	}
	return (long)o;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t full = size * 4 + 1, cutlen, i, n;
	char *e = malloc(full), *c;
	unsigned char *back = malloc(size + 1);
	long got;

	if (e == NULL || back == NULL)
		abort();
	memset(e, 'Z', full);
	str_escape(e, full, data, size);
	if (memchr(e, '\0', full) == NULL)
		abort();
	for (i = 0; e[i] != '\0'; i += n)
		if ((n = fz_char_len((const unsigned char *)e + i,
		    strlen(e + i))) == 0)
			abort();
	got = fz_unescape(e, back);
	if (got != (long)size || memcmp(back, data, size) != 0)
		abort();
	/* Any shorter buffer: a prefix of the whole, ending on a boundary. */
	cutlen = size > 0 ? data[0] % (full + 1) : 0;
	if ((c = malloc(cutlen + 1)) == NULL)
		abort();
	c[cutlen] = 'Z';
	str_escape(c, cutlen, data, size);
	if (cutlen > 0 && (strlen(c) >= cutlen ||
	    strncmp(c, e, strlen(c)) != 0 || c[strlen(c)] != '\0' ||
	    fz_unescape(c, back) < 0))
		abort();
	if (c[cutlen] != 'Z')
		abort();
	free(c);
	free(e);
	free(back);
	return 0;
}
