/*
 * fuzz_mime.c - libFuzzer target for the header field parser: whatever
 * the bytes, every field mime_header_fields() returns must be valid,
 * control-free UTF-8 of at most 998 bytes, and mime_header_get() must
 * keep to its `max`.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mime/mime.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An independent UTF-8 check (RFC 3629 table), so a bug in the
 * library's own validator cannot hide itself. */
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
check_field(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n, len;

	if (s == NULL)
		return;
	n = strlen(s);
	if (n > 998)
		abort();
	if (n > 0 && (s[0] == ' ' || s[n - 1] == ' '))
		abort();
	while (n > 0) {
		if ((len = utf8_seq(p, n)) == 0)
			abort();
		if (len == 1 && (*p < 0x20 || *p == 0x7f))
			abort();
		if (len == 2 && p[0] == 0xc2 && p[1] < 0xa0)
			abort();	/* C1 control */
		p += len;
		n -= len;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "Subject", "from", "X-Any" };
	struct mime_fields f;
	size_t max = size % 64;
	char *v;

	if (mime_header_fields((const char *)data, size, &f) != 0)
		return 0;	/* only -ENOMEM */
	check_field(f.message_id);
	check_field(f.date);
	check_field(f.from);
	check_field(f.to);
	check_field(f.subject);
	mime_fields_free(&f);
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		v = mime_header_get((const char *)data, size, names[i], max);
		if (v != NULL && strlen(v) > max)
			abort();
		free(v);
	}
	return 0;
}
