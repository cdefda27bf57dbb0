/*
 * fuzz_mime_addr.c - libFuzzer target for the address-list parser and
 * the Received "for" clause: whatever the bytes, every address is
 * lower-case, control-free UTF-8 with an '@', the count keeps to `max`,
 * and each address read back alone gives itself again (the form handed
 * on is canonical).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mime/mime.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An independent UTF-8 check (RFC 3629), not the library's own. */
static size_t
utf8_seq(const unsigned char *p, size_t n)
{
	size_t len;

	if (p[0] < 0x80)
		return 1;
	if (p[0] < 0xc2 || p[0] > 0xf4)
		return 0;
	len = p[0] < 0xe0 ? 2 : p[0] < 0xf0 ? 3 : 4;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f) ||
	    (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))
		return 0;
	return len;
}

static void
check_addr(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), len;
	struct mime_addr_list l;

	/* "local"@ (256 bytes, each escaped) and a 255-byte domain */
	if (n == 0 || n > 2 * 256 + 2 + 1 + 255 || strchr(s, '@') == NULL)
		abort();
	while (n > 0) {
		if ((len = utf8_seq(p, n)) == 0)
			abort();
		if (len == 1 && (*p < 0x20 || *p == 0x7f ||
		    (*p >= 'A' && *p <= 'Z')))
			abort();
		p += len;
		n -= len;
	}
	if (mime_parse_addresses(s, strlen(s), 1, &l) != 0)
		abort();
	if (l.n != 1 || strcmp(l.addrs[0], s) != 0)
		abort();
	mime_addr_list_free(&l);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *v = (const char *)data;
	size_t max = size > 0 ? data[0] % 64 : 0;
	struct mime_addr_list l;
	char *s;
	int r;

	r = mime_parse_addresses(v, size, max, &l);
	if (r == -E2BIG)
		return 0;
	if (r != 0 || l.n > max || (l.n == 0) != (l.addrs == NULL))
		abort();
	for (size_t i = 0; i < l.n; i++)
		check_addr(l.addrs[i]);
	mime_addr_list_free(&l);
	if ((s = mime_received_for(v, size)) != NULL) {
		check_addr(s);
		free(s);
	}
	return 0;
}
