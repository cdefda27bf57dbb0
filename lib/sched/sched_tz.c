/*
 * sched_tz.c - time zones without touching TZ: TZif files (RFC 8536) and
 * their POSIX TZ footer rules ("CET-1CEST,M3.5.0,M10.5.0/3") give the UTC
 * offset at any instant, so a schedule in Europe/Berlin can be computed in
 * a threaded daemon whose own zone is UTC.  Also the civil calendar.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sched_private.h"

#define SCHED_TZIF_MAX		(256u << 10)	/* bytes of a TZif file */
#define SCHED_TZ_MAX_TIMES	20000		/* transitions */
#define SCHED_TZ_MAX_TYPES	256
#define SCHED_TZ_MAX_OFFSET	(26 * 3600)	/* |UTC offset| */
#define SCHED_TZ_NAME_MAX	255
#define SCHED_TZ_FOOTER_MAX	256

struct sched_tzdate {
	char		 kind;		/* 'J' (1-365, no Feb 29), 'D' (0-365),
					 * 'M' (month.week.day) */
	int		 n, m, w, d;
	int32_t		 time;		/* seconds after local midnight */
};

struct sched_tzrule {
	int32_t		 std_off;	/* UTC offsets, east positive */
	int32_t		 dst_off;
	bool		 has_dst;
	struct sched_tzdate start, end;
};

struct sched_zone {
	bool		 libc;		/* NULL name: localtime_r() */
	size_t		 n_trans;
	int64_t		*trans;		/* ascending */
	uint8_t		*idx;		/* type of each transition */
	size_t		 n_types;
	int32_t		*types;		/* UTC offset of each type */
	bool		 has_rule;	/* after the last transition */
	struct sched_tzrule rule;
};

int64_t
sched_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe, mp;

	/* Days from civil, counting years from March so Feb 29 is last. */
	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	mp = m > 2 ? m - 3 : m + 9;
	doy = (153 * mp + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

void
sched_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

unsigned
sched_weekday(int64_t days)
{
	/* 1970-01-01 was a Thursday. */
	int64_t w = (days + 4) % 7;

	return (unsigned)(w < 0 ? w + 7 : w);
}

unsigned
sched_month_days(int64_t y, unsigned m)
{
	static const unsigned char len[] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
	};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	if (m < 1 || m > 12)
		return 0;
	return m == 2 && leap ? 29 : len[m - 1];
}

/* --- POSIX TZ strings (the TZif footer) --- */

static int
sched_tz_num(const char **s, int maxdig, int max, int *ret)
{
	int v = 0, n = 0;

	while (**s >= '0' && **s <= '9' && n < maxdig) {
		v = v * 10 + (**s - '0');
		(*s)++;
		n++;
	}
	if (n == 0 || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int
sched_tz_name(const char **s)
{
	const char *p = *s;
	size_t n = 0;

	if (*p == '<') {
		for (p++; (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '+' || *p == '-'; p++)
			n++;
		if (*p != '>' || n < 3)
			return -EINVAL;
		*s = p + 1;
		return 0;
	}
	while ((p[n] >= 'A' && p[n] <= 'Z') || (p[n] >= 'a' && p[n] <= 'z'))
		n++;
	if (n < 3)
		return -EINVAL;
	*s = p + n;
	return 0;
}

/* [+-]hh[:mm[:ss]]; RFC 8536 allows hours up to 167 in rule times. */
static int
sched_tz_hms(const char **s, int maxh, int32_t *ret)
{
	int sign = 1, h, m = 0, sec = 0;

	if (**s == '+' || **s == '-')
		sign = *(*s)++ == '-' ? -1 : 1;
	if (sched_tz_num(s, 3, maxh, &h) < 0)
		return -EINVAL;
	if (**s == ':') {
		(*s)++;
		if (sched_tz_num(s, 2, 59, &m) < 0)
			return -EINVAL;
		if (**s == ':') {
			(*s)++;
			if (sched_tz_num(s, 2, 59, &sec) < 0)
				return -EINVAL;
		}
	}
	*ret = sign * (h * 3600 + m * 60 + sec);
	return 0;
}

static int
sched_tz_date(const char **s, struct sched_tzdate *d)
{
	int r;

	memset(d, 0, sizeof *d);
	if (**s == 'J') {
		(*s)++;
		d->kind = 'J';
		if ((r = sched_tz_num(s, 3, 365, &d->n)) < 0 || d->n < 1)
			return -EINVAL;
	} else if (**s == 'M') {
		(*s)++;
		d->kind = 'M';
		if (sched_tz_num(s, 2, 12, &d->m) < 0 || d->m < 1 ||
		    *(*s)++ != '.' || sched_tz_num(s, 1, 5, &d->w) < 0 ||
		    d->w < 1 || *(*s)++ != '.' ||
		    sched_tz_num(s, 1, 6, &d->d) < 0)
			return -EINVAL;
	} else {
		d->kind = 'D';
		if (sched_tz_num(s, 3, 365, &d->n) < 0)
			return -EINVAL;
	}
	d->time = 2 * 3600;
	if (**s == '/') {
		(*s)++;
		return sched_tz_hms(s, 167, &d->time);
	}
	return 0;
}

static int
sched_tz_parse_posix(const char *s, struct sched_tzrule *r)
{
	int32_t o;

	memset(r, 0, sizeof *r);
	if (sched_tz_name(&s) < 0 || sched_tz_hms(&s, 24, &o) < 0)
		return -EINVAL;
	r->std_off = -o;	/* POSIX counts west positive */
	if (*s == '\0')
		return 0;
	if (sched_tz_name(&s) < 0)
		return -EINVAL;
	r->has_dst = true;
	r->dst_off = r->std_off + 3600;
	if (*s != '\0' && *s != ',') {
		if (sched_tz_hms(&s, 24, &o) < 0)
			return -EINVAL;
		r->dst_off = -o;
	}
	if (*s == '\0') {
		/* POSIX leaves the default rule to the implementation; the
		 * US rule is what everyone uses. */
		s = ",M3.2.0,M11.1.0";
	}
	if (*s++ != ',' || sched_tz_date(&s, &r->start) < 0 ||
	    *s++ != ',' || sched_tz_date(&s, &r->end) < 0 || *s != '\0')
		return -EINVAL;
	return 0;
}

static int64_t
sched_tz_rule_day(const struct sched_tzdate *d, int64_t y)
{
	int64_t first;
	unsigned day, len;

	switch (d->kind) {
	case 'J':
		return sched_days_from_civil(y, 1, 1) + d->n - 1 +
		    (sched_month_days(y, 2) == 29 && d->n >= 60);
	case 'D':
		return sched_days_from_civil(y, 1, 1) + d->n;
	default:
		first = sched_days_from_civil(y, (unsigned)d->m, 1);
		len = sched_month_days(y, (unsigned)d->m);
		day = ((unsigned)d->d + 7 - sched_weekday(first)) % 7 +
		    (unsigned)(d->w - 1) * 7;
		while (day >= len)
			day -= 7;
		return first + day;
	}
}

static int32_t
sched_tz_rule_offset(const struct sched_tzrule *r, int64_t t)
{
	int64_t y, start, end;
	unsigned m, d;

	if (!r->has_dst)
		return r->std_off;
	sched_civil_from_days(sched_floor_div(t + r->std_off, 86400), &y, &m,
	    &d);
	start = sched_tz_rule_day(&r->start, y) * 86400 + r->start.time -
	    r->std_off;
	end = sched_tz_rule_day(&r->end, y) * 86400 + r->end.time - r->dst_off;
	/* start > end: DST spans the new year (southern hemisphere), or
	 * "negative DST" as Europe/Dublin writes its winter time. */
	if (start <= end)
		return t >= start && t < end ? r->dst_off : r->std_off;
	return t >= end && t < start ? r->std_off : r->dst_off;
}

/* --- TZif (RFC 8536) --- */

struct sched_tzif_hdr {
	uint8_t		 version;
	uint32_t	 isut, isstd, leap, time, type, chars;
};

static uint32_t
sched_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static int64_t
sched_be64(const uint8_t *p)
{
	return (int64_t)((uint64_t)sched_be32(p) << 32 | sched_be32(p + 4));
}

static int
sched_tzif_header(const uint8_t *p, size_t len, struct sched_tzif_hdr *h)
{
	if (len < 44 || memcmp(p, "TZif", 4) != 0)
		return -EINVAL;
	h->version = p[4];
	h->isut = sched_be32(p + 20);
	h->isstd = sched_be32(p + 24);
	h->leap = sched_be32(p + 28);
	h->time = sched_be32(p + 32);
	h->type = sched_be32(p + 36);
	h->chars = sched_be32(p + 40);
	if (h->type == 0 || h->type > SCHED_TZ_MAX_TYPES ||
	    h->time > SCHED_TZ_MAX_TIMES || h->leap > SCHED_TZ_MAX_TIMES ||
	    h->chars > SCHED_TZIF_MAX ||
	    (h->isut != 0 && h->isut != h->type) ||
	    (h->isstd != 0 && h->isstd != h->type))
		return -EINVAL;
	return 0;
}

static size_t
sched_tzif_block_len(const struct sched_tzif_hdr *h, size_t tsize)
{
	/* Counts are bounded by sched_tzif_header: no overflow. */
	return (size_t)h->time * (tsize + 1) + (size_t)h->type * 6 + h->chars +
	    (size_t)h->leap * (tsize + 4) + h->isstd + h->isut;
}

static int
sched_tzif_block(struct sched_zone *z, const uint8_t *p,
    const struct sched_tzif_hdr *h, size_t tsize)
{
	const uint8_t *ip = p + (size_t)h->time * tsize, *tp = ip + h->time;
	size_t i;

	z->n_trans = h->time;
	z->n_types = h->type;
	z->trans = calloc(h->time + 1, sizeof *z->trans);
	z->idx = calloc(h->time + 1, sizeof *z->idx);
	z->types = calloc(h->type, sizeof *z->types);
	if (z->trans == NULL || z->idx == NULL || z->types == NULL)
		return -ENOMEM;
	for (i = 0; i < h->time; i++) {
		z->trans[i] = tsize == 8 ? sched_be64(p + 8 * i) :
		    (int32_t)sched_be32(p + 4 * i);
		z->idx[i] = ip[i];
		/* Binary search needs strictly ascending times. */
		if (ip[i] >= h->type || (i > 0 && z->trans[i] <= z->trans[i - 1]))
			return -EINVAL;
	}
	for (i = 0; i < h->type; i++) {
		int32_t off = (int32_t)sched_be32(tp + 6 * i);

		if (off > SCHED_TZ_MAX_OFFSET || off < -SCHED_TZ_MAX_OFFSET)
			return -EINVAL;
		z->types[i] = off;
	}
	return 0;
}

static int
sched_tzif_footer(struct sched_zone *z, const uint8_t *p, size_t len)
{
	char buf[SCHED_TZ_FOOTER_MAX + 1];
	const uint8_t *nl;
	size_t n;

	if (len < 2 || p[0] != '\n' ||
	    (nl = memchr(p + 1, '\n', len - 1)) == NULL)
		return -EINVAL;
	n = (size_t)(nl - (p + 1));
	if (n > SCHED_TZ_FOOTER_MAX || memchr(p + 1, '\0', n) != NULL)
		return -EINVAL;
	if (n == 0)
		return 0;
	memcpy(buf, p + 1, n);
	buf[n] = '\0';
	if (sched_tz_parse_posix(buf, &z->rule) < 0)
		return -EINVAL;
	z->has_rule = true;
	return 0;
}

static int
sched_tzif_parse(struct sched_zone *z, const uint8_t *data, size_t len)
{
	struct sched_tzif_hdr h;
	size_t b, off;
	int r;

	if ((r = sched_tzif_header(data, len, &h)) < 0)
		return r;
	b = sched_tzif_block_len(&h, 4);
	if (b > len - 44)
		return -EINVAL;
	if (h.version == 0)
		return sched_tzif_block(z, data + 44, &h, 4);
	/* Version 2 and later: skip the 32-bit data, use the 64-bit one. */
	off = 44 + b;
	if ((r = sched_tzif_header(data + off, len - off, &h)) < 0)
		return r;
	b = sched_tzif_block_len(&h, 8);
	if (b > len - off - 44)
		return -EINVAL;
	if ((r = sched_tzif_block(z, data + off + 44, &h, 8)) < 0)
		return r;
	off += 44 + b;
	return sched_tzif_footer(z, data + off, len - off);
}

static int
sched_tz_read(const char *path, uint8_t **ret, size_t *ret_len)
{
	struct stat st;
	uint8_t *buf;
	size_t len = 0;
	int fd, r = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0)
		return -EINVAL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > (off_t)SCHED_TZIF_MAX || st.st_size < 44) {
		close(fd);
		return -EINVAL;
	}
	if ((buf = malloc((size_t)st.st_size)) == NULL) {
		close(fd);
		return -ENOMEM;
	}
	while (r == 0 && len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			r = -EINVAL;
		else
			len += (size_t)n;
	}
	close(fd);
	if (r < 0) {
		free(buf);
		return r;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

/* An IANA name, relative and without "..": it becomes a path. */
static bool
sched_zone_name_ok(const char *name)
{
	size_t i, len = strlen(name);

	if (len == 0 || len > SCHED_TZ_NAME_MAX || name[0] == '/' ||
	    strstr(name, "..") != NULL)
		return false;
	for (i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '/' || c == '_' ||
		    c == '-' || c == '+' || c == '.'))
			return false;
	}
	return true;
}

void
sched_zone_free(struct sched_zone *z)
{
	if (z == NULL)
		return;
	free(z->trans);
	free(z->idx);
	free(z->types);
	free(z);
}

static int
sched_zone_file(struct sched_zone *z, const char *name)
{
	const char *dir = getenv("TZDIR");
	char path[4096];
	uint8_t *data;
	size_t len;
	int n, r;

	if (dir == NULL || dir[0] == '\0')
		dir = "/usr/share/zoneinfo";
	n = snprintf(path, sizeof path, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof path)
		return -EINVAL;
	if ((r = sched_tz_read(path, &data, &len)) < 0)
		return r;
	r = sched_tzif_parse(z, data, len);
	free(data);
	return r;
}

int
sched_zone_load(const char *name, struct sched_zone **ret)
{
	struct sched_zone *z;
	int r = 0;

	if (name != NULL && !sched_zone_name_ok(name))
		return -EINVAL;
	if ((z = calloc(1, sizeof *z)) == NULL)
		return -ENOMEM;
	if (name == NULL)
		z->libc = true;
	else if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0)
		z->has_rule = true;	/* works without tzdata */
	else
		r = sched_zone_file(z, name);
	if (r < 0) {
		sched_zone_free(z);
		return r;
	}
	*ret = z;
	return 0;
}

int
sched_zone_from_posix(const char *tz, struct sched_zone **ret)
{
	struct sched_zone *z;

	if ((z = calloc(1, sizeof *z)) == NULL)
		return -ENOMEM;
	if (sched_tz_parse_posix(tz, &z->rule) < 0) {
		free(z);
		return -EINVAL;
	}
	z->has_rule = true;
	*ret = z;
	return 0;
}

int
sched_zone_offset(const struct sched_zone *z, int64_t t, int32_t *ret)
{
	size_t lo, hi;

	if (z->libc) {
		time_t tt = (time_t)t;
		struct tm tm;

		if (localtime_r(&tt, &tm) == NULL)
			return -ERANGE;
		*ret = (int32_t)tm.tm_gmtoff;
		return 0;
	}
	if (z->n_types == 0 || (z->has_rule && (z->n_trans == 0 ||
	    t >= z->trans[z->n_trans - 1]))) {
		*ret = sched_tz_rule_offset(&z->rule, t);
		return 0;
	}
	/* RFC 8536 3.2: before the first transition, type 0 applies. */
	if (z->n_trans == 0 || t < z->trans[0]) {
		*ret = z->types[0];
		return 0;
	}
	lo = 0;
	hi = z->n_trans;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (z->trans[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	*ret = z->types[z->idx[lo]];
	return 0;
}

int
sched_zone_check(const char *tz)
{
	struct sched_zone *z;
	int r;

	if (tz == NULL)
		return -EINVAL;
	if ((r = sched_zone_load(tz, &z)) < 0)
		return r;
	sched_zone_free(z);
	return 0;
}
