/*
 * test_conf_sched.c - the schedule keys of a profile (timezone, jitter,
 * catch_up) and daemon.max_connections_per_host: defaults, values, every
 * error with its FILE:LINE:COL and key path, and next fire times computed
 * in the profile's zone across both DST changes of Europe/Berlin and
 * America/New_York.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/conf.h"
#include "sched/sched.h"

#define CONF_FX_TAG	"confsched"
#include "conf_fixture.h"

static char cfg[256];

/* The head of every config: the archive and the first lines of one
 * profile, so that the line numbers below are fixed. */
#define HEAD \
	"archive:\n" \
	"  path: /var/lib/mailstow\n" \
	"profiles:\n" \
	"  - name: p\n" \
	"    server: { host: imap.example.com, protocol: imaps }\n" \
	"    auth: { user: u, password_file: /etc/mailstow/p }\n"

static void
write_cfg(const char *text)
{
	tmp_path(cfg, sizeof cfg, "mailstow.yaml");
	write_file("mailstow.yaml", text, 0600);
}

static struct conf *
load_ok(const char *text)
{
	struct conf_error err;
	struct conf *c = NULL;

	write_cfg(text);
	if (conf_load(cfg, &c, &err) != 0)
		fail_msg("load failed: %s\n%s", err.text, text);
	return c;
}

/* The error must read "FILE:POS: KEY: ..." and hold `what`. */
static void
load_err(const char *text, const char *pos, const char *key, const char *what)
{
	struct conf_error err;
	struct conf *c = NULL;
	char prefix[512];
	int r;

	write_cfg(text);
	r = conf_load(cfg, &c, &err);
	snprintf(prefix, sizeof prefix, "%s:%s: %s: ", cfg, pos, key);
	if (r != -EINVAL || c != NULL ||
	    strncmp(err.text, prefix, strlen(prefix)) != 0 ||
	    strstr(err.text, what) == NULL)
		fail_msg("r=%d\n  got:  %s\n  want: %s...%s", r, err.text,
		    prefix, what);
}

static time_t
utc(const char *iso)
{
	struct tm tm;

	memset(&tm, 0, sizeof tm);
	if (sscanf(iso, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon,
	    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		fail_msg("bad time %s", iso);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return timegm(&tm);
}

static void
test_defaults(void **state)
{
	struct conf *c = load_ok(HEAD "    schedule: \"@hourly\"\n");

	assert_null(c->profiles[0].timezone);
	assert_int_equal(c->profiles[0].jitter_ms, 0);
	assert_true(c->profiles[0].catch_up);
	assert_int_equal(c->daemon.max_connections_per_host, 8);
	conf_free(c);
}

static void
test_values(void **state)
{
	struct conf *c = load_ok(
	    "daemon:\n"
	    "  max_connections_per_host: 2\n"
	    HEAD
	    "    schedule: \"*/15 * * * *\"\n"
	    "    timezone: Europe/Berlin\n"
	    "    jitter: 5m\n"
	    "    catch_up: false\n");

	assert_string_equal(c->profiles[0].timezone, "Europe/Berlin");
	assert_int_equal(c->profiles[0].jitter_ms, 5 * 60 * 1000);
	assert_false(c->profiles[0].catch_up);
	assert_int_equal(c->daemon.max_connections_per_host, 2);
	conf_free(c);

	/* The bounds themselves are fine; so is UTC without tzdata. */
	c = load_ok("daemon: { max_connections_per_host: 256 }\n" HEAD
	    "    schedule: every 2h\n    jitter: 1h\n    timezone: UTC\n");
	assert_int_equal(c->profiles[0].jitter_ms, 3600 * 1000);
	assert_int_equal(c->daemon.max_connections_per_host, 256);
	conf_free(c);
	/* Manual has no fires to delay: jitter is accepted and unused. */
	c = load_ok(HEAD "    jitter: 10m\n");
	assert_int_equal(c->profiles[0].jitter_ms, 600 * 1000);
	conf_free(c);
}

static void
test_errors(void **state)
{
	load_err(HEAD "    schedule: \"@daily\"\n    timezone: Mars/Olympus\n",
	    "8:15", "profiles[0].timezone", "'Mars/Olympus' is not a time "
	    "zone of this system; give an IANA name such as Europe/Berlin");
	load_err(HEAD "    timezone: ../../etc/passwd\n", "7:15",
	    "profiles[0].timezone", "is not a time zone");
	load_err(HEAD "    timezone: /usr/share/zoneinfo/UTC\n", "7:15",
	    "profiles[0].timezone", "is not a time zone");
	load_err(HEAD "    timezone: [Europe/Berlin]\n", "7:15",
	    "profiles[0].timezone", "");
	load_err(HEAD "    schedule: every 6h\n    jitter: 2h\n", "8:13",
	    "profiles[0].jitter", "2h is out of range; give a duration from "
	    "0h to 1h");
	load_err(HEAD "    schedule: every 6h\n    jitter: soon\n", "8:13",
	    "profiles[0].jitter", "'soon' is not a duration");
	load_err(HEAD "    schedule: \"*/15 * * * *\"\n    jitter: 15m\n",
	    "8:13", "profiles[0].jitter", "15m is not shorter than 15m, the "
	    "time between two fires of schedule \"*/15 * * * *\"; give a "
	    "shorter jitter");
	load_err(HEAD "    schedule: \"0 8,9 * * *\"\n    jitter: 61m\n",
	    "8:13", "profiles[0].jitter", "out of range");
	load_err(HEAD "    schedule: every 30s\n    jitter: 30s\n", "8:13",
	    "profiles[0].jitter", "30s is not shorter than 30s");
	load_err(HEAD "    catch_up: yes\n", "7:15", "profiles[0].catch_up",
	    "expected true or false, found 'yes'");
	load_err(HEAD "    timezon: UTC\n", "7:5", "profiles[0].timezon",
	    "unknown key 'timezon'; did you mean 'timezone'?");
	load_err("daemon:\n  max_connections_per_host: 0\n" HEAD, "2:29",
	    "daemon.max_connections_per_host", "0 is out of range; give a "
	    "number from 1 to 256");
	load_err("daemon:\n  max_connections_per_host: 257\n" HEAD, "2:29",
	    "daemon.max_connections_per_host", "from 1 to 256");
}

/* Next fires of the loaded profile `i`, in its own zone. */
static void
expect_fire(const struct conf *c, size_t i, const char *after,
    const char *want)
{
	const struct conf_profile *p = &c->profiles[i];
	char err[256];
	struct sched *s;
	time_t t = 0;

	if (sched_parse(p->schedule, &s, err, sizeof err) != 0)
		fail_msg("%s", err);
	assert_int_equal(sched_next(s, utc(after), p->timezone, &t), 0);
	sched_free(s);
	if (t != utc(want))
		fail_msg("profile %s (%s) after %s: got %lld want %s", p->name,
		    p->timezone, after, (long long)t, want);
}

static void
test_zone_of_profile(void **state)
{
	struct conf *c = load_ok(
	    "archive: { path: /var/lib/mailstow }\n"
	    "profiles:\n"
	    "  - name: berlin\n"
	    "    server: { host: h, protocol: imaps }\n"
	    "    auth: { user: u, password_file: /p }\n"
	    "    schedule: \"30 2 * * *\"\n"
	    "    timezone: Europe/Berlin\n"
	    "  - name: newyork\n"
	    "    server: { host: h, protocol: imaps }\n"
	    "    auth: { user: u, password_file: /p }\n"
	    "    schedule: \"30 1 * * *\"\n"
	    "    timezone: America/New_York\n"
	    "  - name: nyspring\n"
	    "    server: { host: h, protocol: imaps }\n"
	    "    auth: { user: u, password_file: /p }\n"
	    "    schedule: \"30 2 * * *\"\n"
	    "    timezone: America/New_York\n");

	/* Berlin, spring: 02:30 does not exist on 29 March; it fires once
	 * at the end of the gap, 03:00 CEST. */
	expect_fire(c, 0, "2026-03-28T12:00:00", "2026-03-29T01:00:00");
	expect_fire(c, 0, "2026-03-29T01:00:00", "2026-03-30T00:30:00");
	/* Berlin, autumn: 02:30 happens twice on 25 October; only the
	 * first (CEST) fires, the next is the 26th in CET. */
	expect_fire(c, 0, "2026-10-24T12:00:00", "2026-10-25T00:30:00");
	expect_fire(c, 0, "2026-10-25T00:30:00", "2026-10-26T01:30:00");
	/* New York, autumn: 01:30 twice on 1 November; EDT fires. */
	expect_fire(c, 1, "2026-10-31T12:00:00", "2026-11-01T05:30:00");
	expect_fire(c, 1, "2026-11-01T05:30:00", "2026-11-02T06:30:00");
	/* New York, spring: 02:30 skipped on 8 March -> 03:00 EDT. */
	expect_fire(c, 2, "2026-03-07T12:00:00", "2026-03-08T07:00:00");
	expect_fire(c, 2, "2026-03-08T07:00:00", "2026-03-09T06:30:00");
	conf_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_zone_of_profile),
	};

	return cmocka_run_group_tests(tests, tmp_setup, tmp_teardown);
}
