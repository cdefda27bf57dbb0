/*
 * imap_uidset.c - sets of UIDs kept as sorted, disjoint, non-adjacent
 * ranges (RFC 3501 sequence-set).  A set is never expanded: a server may
 * answer "1:4294967295", and that must cost two numbers, not 16 GiB.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "base/util.h"
#include "imap_util.h"

void
imap_uidset_init(struct imap_uidset *set)
{
	set->r = NULL;
	set->n = set->cap = 0;
}

void
imap_uidset_clear(struct imap_uidset *set)
{
	free(set->r);
	imap_uidset_init(set);
}

static int
uidset_reserve(struct imap_uid_range **r, size_t *cap, size_t need)
{
	struct imap_uid_range *n;
	size_t ncap;

	if (need <= *cap)
		return 0;
	ncap = *cap != 0 ? *cap : 8;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2 / sizeof **r)
			return -ENOMEM;
		ncap *= 2;
	}
	if ((n = realloc(*r, ncap * sizeof **r)) == NULL)
		return -ENOMEM;
	*r = n;
	*cap = ncap;
	return 0;
}

/* First range that ends at lo-1 or later (touches or follows lo). */
static size_t
uidset_first_touching(const struct imap_uidset *set, uint32_t lo)
{
	size_t a = 0, b = set->n;

	while (a < b) {
		size_t m = a + (b - a) / 2;

		if ((uint64_t)set->r[m].hi + 1 >= lo)
			b = m;
		else
			a = m + 1;
	}
	return a;
}

/* First range that starts after hi+1 (neither overlaps nor touches). */
static size_t
uidset_first_after(const struct imap_uidset *set, uint32_t hi)
{
	size_t a = 0, b = set->n;

	while (a < b) {
		size_t m = a + (b - a) / 2;

		if (set->r[m].lo > (uint64_t)hi + 1)
			b = m;
		else
			a = m + 1;
	}
	return a;
}

int
imap_uidset_add(struct imap_uidset *set, uint32_t lo, uint32_t hi)
{
	size_t i, j;

	if (lo > hi) {
		uint32_t t = lo;

		lo = hi;
		hi = t;
	}
	/* UID 0 does not exist (RFC 3501 2.3.1.1); it cannot go on the wire. */
	if (lo == 0)
		return -EINVAL;
	i = uidset_first_touching(set, lo);
	j = uidset_first_after(set, hi);
	if (i == j) {
		if (uidset_reserve(&set->r, &set->cap, set->n + 1) < 0)
			return -ENOMEM;
		memmove(set->r + i + 1, set->r + i,
		    (set->n - i) * sizeof *set->r);
		set->r[i].lo = lo;
		set->r[i].hi = hi;
		set->n++;
		return 0;
	}
	/* Ranges i..j-1 overlap or touch lo..hi: fold them into r[i]. */
	if (set->r[i].lo < lo)
		lo = set->r[i].lo;
	if (set->r[j - 1].hi > hi)
		hi = set->r[j - 1].hi;
	set->r[i].lo = lo;
	set->r[i].hi = hi;
	memmove(set->r + i + 1, set->r + j, (set->n - j) * sizeof *set->r);
	set->n -= j - i - 1;
	return 0;
}

uint64_t
imap_uidset_count(const struct imap_uidset *set)
{
	uint64_t total = 0;
	size_t i;

	for (i = 0; i < set->n; i++)
		total += (uint64_t)set->r[i].hi - set->r[i].lo + 1;
	return total;
}

/* seq-number: nz-number or '*'. */
static int
uidset_number(const char *s, size_t len, size_t *pos, uint32_t star,
    uint32_t *ret)
{
	size_t i = *pos, j;
	uint32_t v;

	if (i < len && s[i] == '*') {
		if (star == 0)
			return -EINVAL;
		*pos = i + 1;
		*ret = star;
		return 0;
	}
	for (j = i; j < len && s[j] >= '0' && s[j] <= '9'; j++)
		;
	if (parse_u32(s + i, j - i, &v) < 0 || v == 0)
		return -EINVAL;
	*pos = j;
	*ret = v;
	return 0;
}

static int
uidset_cmp(const void *a, const void *b)
{
	const struct imap_uid_range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Sort and fold ranges in place; returns the new count. */
static size_t
uidset_normalise(struct imap_uid_range *r, size_t n)
{
	size_t i, o = 0;

	qsort(r, n, sizeof *r, uidset_cmp);
	for (i = 0; i < n; i++) {
		if (o > 0 && (uint64_t)r[o - 1].hi + 1 >= r[i].lo) {
			if (r[i].hi > r[o - 1].hi)
				r[o - 1].hi = r[i].hi;
		} else
			r[o++] = r[i];
	}
	return o;
}

/*
 * The ranges are collected, sorted and folded once (n log n): adding them
 * one by one could cost n^2 moves on a hostile descending list.
 * max_ranges bounds the ranges written in `s`, before folding.
 */
int
imap_uidset_parse(struct imap_uidset *set, const char *s, size_t len,
    uint32_t star, size_t max_ranges)
{
	struct imap_uid_range *r = NULL;
	size_t n = 0, cap = 0, pos = 0;
	uint32_t lo, hi;
	int err = -EINVAL;

	for (;;) {
		if (uidset_number(s, len, &pos, star, &lo) < 0)
			goto fail;
		hi = lo;
		if (pos < len && s[pos] == ':') {
			pos++;
			if (uidset_number(s, len, &pos, star, &hi) < 0)
				goto fail;
		}
		if (n >= max_ranges) {
			err = -E2BIG;
			goto fail;
		}
		if (uidset_reserve(&r, &cap, n + 1) < 0) {
			err = -ENOMEM;
			goto fail;
		}
		r[n].lo = lo < hi ? lo : hi;
		r[n].hi = lo < hi ? hi : lo;
		n++;
		if (pos == len)
			break;
		if (s[pos++] != ',')
			goto fail;
	}
	imap_uidset_clear(set);
	set->r = r;
	set->n = uidset_normalise(r, n);
	set->cap = cap;
	return 0;
fail:
	free(r);
	return err;
}

int
imap_uidset_format(const struct imap_uidset *set, struct evbuffer *out)
{
	/* "4294967295:4294967295," is 22 bytes. */
	enum { RANGE_MAX = 22 };
	size_t i, o = 0;
	char *buf;
	int r;

	/* An empty sequence-set is not valid IMAP: never write one. */
	if (set->n == 0)
		return -EINVAL;
	if (set->n > (SIZE_MAX - 1) / RANGE_MAX ||
	    (buf = malloc(set->n * RANGE_MAX + 1)) == NULL)
		return -ENOMEM;
	for (i = 0; i < set->n; i++) {
		const struct imap_uid_range *g = &set->r[i];

		if (g->lo == g->hi)
			o += (size_t)snprintf(buf + o, RANGE_MAX + 1, "%s%u",
			    i > 0 ? "," : "", g->lo);
		else
			o += (size_t)snprintf(buf + o, RANGE_MAX + 1, "%s%u:%u",
			    i > 0 ? "," : "", g->lo, g->hi);
	}
	r = evbuffer_add(out, buf, o) < 0 ? -ENOMEM : 0;
	free(buf);
	return r;
}
