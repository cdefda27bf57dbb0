/*
 * fuzz_mutf7.c - modified UTF-7 both ways: whatever decodes must encode
 * and decode back to the same UTF-8, and whatever encodes must decode to
 * what was encoded.  The encoder's output must be printable ASCII.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fz_check_mutf7(const char *m)
{
	size_t i;

	for (i = 0; m[i] != '\0'; i++)
		if (m[i] < 0x20 || m[i] > 0x7e)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *u, *m, *u2, *s;

	if (imap_mutf7_decode((const char *)data, size, &u) == 0) {
		if (imap_mutf7_encode(u, &m) != 0)
			abort();
		fz_check_mutf7(m);
		if (imap_mutf7_decode(m, strlen(m), &u2) != 0 ||
		    strcmp(u, u2) != 0)
			abort();
		free(u2);
		free(m);
		free(u);
	}
	/* The other way: the bytes as UTF-8 (up to a NUL). */
	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (imap_mutf7_encode(s, &m) == 0) {
		fz_check_mutf7(m);
		if (imap_mutf7_decode(m, strlen(m), &u) != 0 ||
		    strcmp(u, s) != 0)
			abort();
		free(u);
		free(m);
	}
	free(s);
	return 0;
}
