/*
 * fuzz_uidset.c - UID sets: a parsed set is canonical (sorted, disjoint,
 * not adjacent), formats to text that parses back to the same ranges, and
 * counts what its ranges hold.  The same bytes read as (lo, hi) pairs for
 * imap_uidset_add() must give a canonical set too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "imap/imap_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fz_canonical(const struct imap_uidset *s)
{
	uint64_t count = 0;
	size_t i;

	for (i = 0; i < s->n; i++) {
		if (s->r[i].lo == 0 || s->r[i].lo > s->r[i].hi)
			abort();
		if (i > 0 && (uint64_t)s->r[i - 1].hi + 1 >= s->r[i].lo)
			abort();
		count += (uint64_t)s->r[i].hi - s->r[i].lo + 1;
	}
	if (count != imap_uidset_count(s))
		abort();
}

static void
fz_reparse(const struct imap_uidset *s)
{
	struct evbuffer *b = evbuffer_new();
	struct imap_uidset t;
	size_t n;

	if (b == NULL)
		abort();
	imap_uidset_init(&t);
	if (imap_uidset_format(s, b) != 0)
		abort();
	n = evbuffer_get_length(b);
	if (imap_uidset_parse(&t, (const char *)evbuffer_pullup(b, -1), n, 0,
	    s->n) != 0 || t.n != s->n ||
	    memcmp(t.r, s->r, s->n * sizeof *s->r) != 0)
		abort();
	imap_uidset_clear(&t);
	evbuffer_free(b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_uidset s;
	uint32_t star = 0, lo, hi;
	size_t i;

	if (size >= 4)
		memcpy(&star, data, 4);
	imap_uidset_init(&s);
	if (imap_uidset_parse(&s, (const char *)data + (size >= 4 ? 4 : 0),
	    size >= 4 ? size - 4 : size, star, 256) == 0) {
		fz_canonical(&s);
		if (s.n == 0)
			abort();
		fz_reparse(&s);
	}
	imap_uidset_clear(&s);
	for (i = 0; i + 8 <= size; i += 8) {
		memcpy(&lo, data + i, 4);
		memcpy(&hi, data + i + 4, 4);
		/* Small numbers make merges likely. */
		if (data[i] & 1) {
			lo %= 64;
			hi %= 64;
		}
		if (imap_uidset_add(&s, lo, hi) != 0 && lo != 0 && hi != 0)
			abort();
		fz_canonical(&s);
	}
	if (s.n > 0)
		fz_reparse(&s);
	imap_uidset_clear(&s);
	return 0;
}
