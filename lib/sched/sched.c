/*
 * sched.c - schedule expressions into struct sched: "manual", "every
 * DURATION", the @hourly family and 5-field cron lines (lists, ranges,
 * steps, month and weekday names).  Each field becomes a bit set; errors
 * are one sentence naming the field and the value.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/util.h"
#include "sched_private.h"

#define SCHED_TEXT_MAX		256		/* bytes of an expression */
#define SCHED_EVERY_MAX_S	(366ULL * 86400)

struct sched_field {
	const char	*name;
	unsigned	 min, max;
	const char *const *names;	/* names[i] is value min + i */
};

static const char *const sched_month_names[] = {
	"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
	"nov", "dec", NULL
};
static const char *const sched_day_names[] = {
	"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL
};

/* Day of week runs to 7 so that both 0 and 7 are Sunday. */
static const struct sched_field sched_fields[5] = {
	{ "minute", 0, 59, NULL },
	{ "hour", 0, 23, NULL },
	{ "day of month", 1, 31, NULL },
	{ "month", 1, 12, sched_month_names },
	{ "day of week", 0, 7, sched_day_names },
};

static const struct {
	const char	*name;
	const char	*cron;
} sched_macros[] = {
	{ "@hourly", "0 * * * *" },
	{ "@daily", "0 0 * * *" },
	{ "@midnight", "0 0 * * *" },
	{ "@weekly", "0 0 * * 0" },
	{ "@monthly", "0 0 1 * *" },
	{ "@yearly", "0 0 1 1 *" },
	{ "@annually", "0 0 1 1 *" },
};

static int
sched_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
sched_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

void
sched_free(struct sched *s)
{
	free(s);
}

enum sched_kind
sched_kind(const struct sched *s)
{
	return s->kind;
}

/* A number or (where the field has them) a three-letter name. */
static int
sched_value(const struct sched_field *f, int fi, const char *tok, size_t len,
    unsigned *ret, char *err, size_t errlen)
{
	uint32_t v;
	size_t i;

	for (i = 0; f->names != NULL && f->names[i] != NULL; i++) {
		if (len == 3 && strncasecmp(tok, f->names[i], 3) == 0) {
			*ret = f->min + (unsigned)i;
			return 0;
		}
	}
	if (parse_u32(tok, len, &v) < 0)
		return sched_err(err, errlen, "field %d (%s): '%.*s' is not a "
		    "number%s", fi + 1, f->name, (int)(len > 20 ? 20 : len), tok,
		    f->names != NULL ? " or a name" : "");
	if (v < f->min || v > f->max)
		return sched_err(err, errlen, "field %d (%s): %u is out of range "
		    "%u-%u", fi + 1, f->name, v, f->min, f->max);
	*ret = v;
	return 0;
}

/* One list entry: "*", "A", "A-B", each optionally followed by "/STEP". */
static int
sched_item(const struct sched_field *f, int fi, const char *tok, size_t len,
    uint64_t *mask, char *err, size_t errlen)
{
	const char *slash = memchr(tok, '/', len), *dash;
	size_t rlen = slash != NULL ? (size_t)(slash - tok) : len;
	unsigned lo = f->min, hi = f->max, step = 1, v;
	uint32_t st;
	int r;

	if (slash != NULL) {
		size_t slen = len - rlen - 1;

		if (parse_u32(slash + 1, slen, &st) < 0 || st == 0 ||
		    st > f->max)
			return sched_err(err, errlen, "field %d (%s): step "
			    "'%.*s' is not a number from 1 to %u", fi + 1,
			    f->name, (int)(slen > 20 ? 20 : slen), slash + 1,
			    f->max);
		step = st;
	}
	if (rlen == 1 && tok[0] == '*')
		goto fill;
	dash = memchr(tok, '-', rlen);
	if ((r = sched_value(f, fi, tok, dash != NULL ? (size_t)(dash - tok) :
	    rlen, &lo, err, errlen)) < 0)
		return r;
	hi = lo;
	if (dash != NULL && (r = sched_value(f, fi, dash + 1,
	    rlen - (size_t)(dash - tok) - 1, &hi, err, errlen)) < 0)
		return r;
	/* "fri-sun": Sunday ends a weekday range as 7. */
	if (fi == 4 && dash != NULL && hi == 0 && lo > 0)
		hi = 7;
	if (hi < lo)
		return sched_err(err, errlen, "field %d (%s): range %.*s runs "
		    "backwards; write it as two ranges", fi + 1, f->name,
		    (int)(rlen > 20 ? 20 : rlen), tok);
	if (slash != NULL && dash == NULL)
		return sched_err(err, errlen, "field %d (%s): a step needs a "
		    "range or *, e.g. %u-%u/%u", fi + 1, f->name, lo, f->max,
		    step);
fill:
	for (v = lo; v <= hi; v += step)
		*mask |= 1ULL << v;
	return 0;
}

static int
sched_field_parse(int fi, const char *tok, size_t len, uint64_t *ret,
    char *err, size_t errlen)
{
	const struct sched_field *f = &sched_fields[fi];
	uint64_t mask = 0;
	size_t start = 0, i;
	int r;

	for (i = 0; i <= len; i++) {
		if (i < len && tok[i] != ',')
			continue;
		if (i == start)
			return sched_err(err, errlen, "field %d (%s): empty "
			    "list entry in '%.*s'", fi + 1, f->name,
			    (int)(len > 20 ? 20 : len), tok);
		if ((r = sched_item(f, fi, tok + start, i - start, &mask, err,
		    errlen)) < 0)
			return r;
		start = i + 1;
	}
	*ret = mask;
	return 0;
}

static int
sched_cron(struct sched *s, const char *text, char *err, size_t errlen)
{
	const char *tok[6];
	size_t len[6];
	uint64_t mask[5];
	int n = 0, i, r;

	while (*text != '\0') {
		text += strspn(text, " \t");
		if (*text == '\0')
			break;
		if (n == 6)
			break;
		tok[n] = text;
		len[n] = strcspn(text, " \t");
		text += len[n++];
	}
	if (n != 5)
		return sched_err(err, errlen, "a cron schedule has 5 fields "
		    "(minute hour day-of-month month day-of-week), this has %s%d",
		    n == 6 ? "more than " : "", n == 6 ? 5 : n);
	for (i = 0; i < 5; i++)
		if ((r = sched_field_parse(i, tok[i], len[i], &mask[i], err,
		    errlen)) < 0)
			return r;
	s->kind = SCHED_CRON;
	s->minutes = mask[0];
	s->hours = (uint32_t)mask[1];
	s->mdays = (uint32_t)mask[2];
	s->months = (uint32_t)mask[3];
	/* 7 is Sunday too. */
	s->wdays = (uint32_t)((mask[4] | mask[4] >> 7) & 0x7f);
	s->mday_any = len[2] == 1 && tok[2][0] == '*';
	s->wday_any = len[4] == 1 && tok[4][0] == '*';
	return 0;
}

static int
sched_every(struct sched *s, const char *arg, char *err, size_t errlen)
{
	uint64_t ms;

	arg += strspn(arg, " \t");
	if (parse_duration_ms(arg, &ms) < 0)
		return sched_err(err, errlen, "'%.20s' is not a duration; write "
		    "e.g. every 15m or every 1h30m", arg);
	if (ms < 1000)
		return sched_err(err, errlen, "the interval must be at least 1s");
	if (ms / 1000 > SCHED_EVERY_MAX_S)
		return sched_err(err, errlen, "an interval longer than 366d; "
		    "use a cron schedule");
	s->kind = SCHED_EVERY;
	s->every_s = ms / 1000;
	return 0;
}

static int
sched_macro(struct sched *s, const char *text, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < NELEM(sched_macros); i++)
		if (strcasecmp(text, sched_macros[i].name) == 0)
			return sched_cron(s, sched_macros[i].cron, err, errlen);
	if (strcasecmp(text, "@reboot") == 0)
		return sched_err(err, errlen, "@reboot is not supported");
	return sched_err(err, errlen, "unknown '%.20s'; use @hourly, @daily, "
	    "@weekly, @monthly or @yearly", text);
}

/* Copy `text` without surrounding blanks; refuse what is not printable
 * ASCII, so every token may be quoted in an error as is. */
static int
sched_clean(const char *text, char *buf, size_t buflen, char *err,
    size_t errlen)
{
	size_t len, i;

	text += strspn(text, " \t");
	len = strlen(text);
	while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t'))
		len--;
	if (len == 0)
		return sched_err(err, errlen, "the schedule is empty");
	if (len >= buflen)
		return sched_err(err, errlen, "longer than %zu characters",
		    buflen - 1);
	for (i = 0; i < len; i++)
		if ((text[i] < 0x20 && text[i] != '\t') || text[i] > 0x7e)
			return sched_err(err, errlen, "contains a character "
			    "that is not printable ASCII");
	memcpy(buf, text, len);
	buf[len] = '\0';
	return 0;
}

int
sched_parse(const char *text, struct sched **ret, char *err, size_t errlen)
{
	char buf[SCHED_TEXT_MAX];
	struct sched *s;
	int r;

	if (text == NULL)
		return sched_err(err, errlen, "no schedule given");
	if ((r = sched_clean(text, buf, sizeof buf, err, errlen)) < 0)
		return r;
	if ((s = calloc(1, sizeof *s)) == NULL)
		return -ENOMEM;
	if (strcasecmp(buf, "manual") == 0)
		s->kind = SCHED_MANUAL;
	else if (strncasecmp(buf, "every", 5) == 0 &&
	    (buf[5] == ' ' || buf[5] == '\t' || buf[5] == '\0'))
		r = sched_every(s, buf + 5, err, errlen);
	else if (buf[0] == '@')
		r = sched_macro(s, buf, err, errlen);
	else
		r = sched_cron(s, buf, err, errlen);
	if (r < 0) {
		free(s);
		return r;
	}
	*ret = s;
	return 0;
}
