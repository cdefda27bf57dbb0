/*
 * test_oauth2.c - the offline half of lib/oauth2: token endpoint and
 * device responses (good, missing members, wrong types, oversized, deep,
 * non-ASCII), the token file (round trip, modes, refusals, a failed save
 * that leaves the old file whole, ownership when root) and path bounds.
 */
#define _GNU_SOURCE
#include <sys/resource.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/util.h"
#include "oauth2/oauth2.h"
#include "oauth2/oauth2_private.h"

#define NOW	1700000000

static char tmpdir[64];

static int
group_setup(void **state)
{
	strcpy(tmpdir, "/tmp/mailstow-test-oauth2-XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
group_teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static int
parse(const char *json, struct oauth2_tokens *t, char *err, size_t errlen)
{
	memset(t, 0, sizeof *t);
	return oauth2_parse_token_response(json, strlen(json), NOW, t, err,
	    errlen);
}

static void
t_parse_good(void **state)
{
	struct oauth2_tokens t;
	char err[128] = "";

	assert_int_equal(parse("{\"access_token\":\"AT.1-_~+/=\","
	    "\"token_type\":\"Bearer\",\"expires_in\":3599,"
	    "\"refresh_token\":\"RT\",\"scope\":\"a b\"}", &t, err,
	    sizeof err), 0);
	assert_string_equal(t.access_token, "AT.1-_~+/=");
	assert_string_equal(t.refresh_token, "RT");
	assert_string_equal(t.scope, "a b");
	assert_int_equal(t.expires_at, NOW + 3599);
	oauth2_tokens_clear(&t);
	assert_null(t.access_token);

	/* No expires_in: an hour; Azure AD v1 sends it as a string. */
	assert_int_equal(parse("{\"access_token\":\"x\"}", &t, err,
	    sizeof err), 0);
	assert_int_equal(t.expires_at, NOW + 3600);
	assert_null(t.refresh_token);
	assert_null(t.scope);
	oauth2_tokens_clear(&t);
	assert_int_equal(parse("{\"access_token\":\"x\",\"expires_in\":"
	    "\"120\",\"token_type\":\"bearer\"}", &t, err, sizeof err), 0);
	assert_int_equal(t.expires_at, NOW + 120);
	oauth2_tokens_clear(&t);
	/* Absurd lifetimes are clamped to a year. */
	assert_int_equal(parse("{\"access_token\":\"x\",\"expires_in\":"
	    "99999999999}", &t, err, sizeof err), 0);
	assert_int_equal(t.expires_at, NOW + OAUTH2_MAX_EXPIRES);
	oauth2_tokens_clear(&t);
}

static void
t_parse_bad(void **state)
{
	static const struct {
		const char *json, *err;
	} cases[] = {
		{ "{}", "access_token is missing" },
		{ "{\"expires_in\":5}", "access_token is missing" },
		{ "{\"access_token\":5}", "access_token is not a string" },
		{ "{\"access_token\":\"\"}", "access_token is empty" },
		{ "{\"access_token\":\"a b\"}", "printable" },
		{ "{\"access_token\":\"t\\u00e9\"}", "printable" },
		{ "{\"access_token\":\"t\\n\"}", "printable" },
		{ "{\"access_token\":\"x\",\"refresh_token\":[]}",
		    "refresh_token is not a string" },
		{ "{\"access_token\":\"x\",\"scope\":{}}",
		    "scope is not a string" },
		{ "{\"access_token\":\"x\",\"expires_in\":-1}", "negative" },
		{ "{\"access_token\":\"x\",\"expires_in\":\"1h\"}",
		    "number of seconds" },
		{ "{\"access_token\":\"x\",\"expires_in\":1.5}",
		    "not a number" },
		{ "{\"access_token\":\"x\",\"token_type\":\"mac\"}",
		    "not Bearer" },
		{ "{\"access_token\":\"x\",\"access_token\":\"y\"}", "JSON" },
		{ "[\"access_token\"]", "not a JSON object" },
		{ "\"x\"", "JSON" },
		{ "{\"access_token\":\"x\"", "JSON" },
		{ "", "JSON" },
	};
	struct oauth2_tokens t;
	char err[128];
	size_t i;

	for (i = 0; i < NELEM(cases); i++) {
		err[0] = '\0';
		t.access_token = (char *)"untouched";
		assert_int_equal(oauth2_parse_token_response(cases[i].json,
		    strlen(cases[i].json), NOW, &t, err, sizeof err), -EINVAL);
		/* ret_ is written only on success. */
		assert_string_equal(t.access_token, "untouched");
		if (strstr(err, cases[i].err) == NULL)
			fail_msg("case %zu: %s: err '%s'", i, cases[i].json,
			    err);
	}
}

static void
t_parse_limits(void **state)
{
	size_t big = OAUTH2_MAX_RESPONSE + 10, i, n;
	struct oauth2_tokens t;
	char err[128], *s;

	assert_non_null(s = malloc(big + 64));
	/* A 16 KiB token is fine, one byte more is not. */
	for (i = 0; i < 2; i++) {
		n = (size_t)snprintf(s, big, "{\"access_token\":\"");
		memset(s + n, 'a', OAUTH2_MAX_TOKEN + i);
		n += OAUTH2_MAX_TOKEN + i;
		n += (size_t)snprintf(s + n, 8, "\"}");
		assert_int_equal(oauth2_parse_token_response(s, n, NOW, &t,
		    err, sizeof err), i == 0 ? 0 : -EINVAL);
		if (i == 0) {
			assert_int_equal(strlen(t.access_token),
			    OAUTH2_MAX_TOKEN);
			oauth2_tokens_clear(&t);
		}
	}
	/* Above 64 KiB nothing is parsed. */
	n = (size_t)snprintf(s, big, "{\"access_token\":\"x\",\"pad\":\"");
	memset(s + n, 'p', big - n - 2);
	memcpy(s + big - 2, "\"}", 2);
	assert_int_equal(oauth2_parse_token_response(s, big, NOW, &t, err,
	    sizeof err), -EINVAL);
	assert_non_null(strstr(err, "larger"));
	/* Deep nesting is refused before jansson sees it, even in a
	 * member nobody reads; brackets inside strings do not count. */
	n = (size_t)snprintf(s, big, "{\"access_token\":\"x\",\"d\":");
	for (i = 0; i < 40; i++)
		s[n++] = '[';
	for (i = 0; i < 40; i++)
		s[n++] = ']';
	s[n++] = '}';
	assert_int_equal(oauth2_parse_token_response(s, n, NOW, &t, err,
	    sizeof err), -EINVAL);
	assert_non_null(strstr(err, "nested"));
	n = (size_t)snprintf(s, big, "{\"access_token\":\"x\",\"d\":\""
	    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"[[[\"}");
	assert_int_equal(oauth2_parse_token_response(s, n, NOW, &t, err,
	    sizeof err), 0);
	oauth2_tokens_clear(&t);
	free(s);
}

static void
t_parse_error_body(void **state)
{
	const char *b = "{\"error\":\"invalid_grant\",\"error_description\":"
	    "\"AADSTS70008: expired\\r\\nX\"}";
	char *code = NULL, *desc = NULL;

	assert_int_equal(oauth2_parse_error(b, strlen(b), &code, &desc), 0);
	assert_string_equal(code, "invalid_grant");
	assert_string_equal(desc, "AADSTS70008: expired\r\nX");
	free(code);
	free(desc);
	b = "{\"error\":\"slow_down\"}";
	assert_int_equal(oauth2_parse_error(b, strlen(b), &code, &desc), 0);
	assert_string_equal(code, "slow_down");
	assert_null(desc);
	free(code);
	b = "{\"error\":42}";
	assert_int_equal(oauth2_parse_error(b, strlen(b), &code, &desc),
	    -EINVAL);
	b = "<html>";
	assert_int_equal(oauth2_parse_error(b, strlen(b), &code, &desc),
	    -EINVAL);
}

static void
t_parse_device(void **state)
{
	struct oauth2_device d;
	char err[128] = "";
	const char *b;

	b = "{\"device_code\":\"DC\",\"user_code\":\"WDJB-MJHT\","
	    "\"verification_uri\":\"https://example.com/device\","
	    "\"verification_uri_complete\":\"https://example.com/device?c=1\","
	    "\"expires_in\":1800,\"interval\":7}";
	assert_int_equal(oauth2_parse_device_response(b, strlen(b), &d, err,
	    sizeof err), 0);
	assert_string_equal(d.device_code, "DC");
	assert_string_equal(d.user_code, "WDJB-MJHT");
	assert_string_equal(d.verification_uri, "https://example.com/device");
	assert_string_equal(d.verification_uri_complete,
	    "https://example.com/device?c=1");
	assert_int_equal(d.interval, 7);
	assert_int_equal(d.expires_in, 1800);
	oauth2_device_clear(&d);
	assert_null(d.device_code);

	/* Google's spelling; no interval means 5. */
	b = "{\"device_code\":\"DC\",\"user_code\":\"AB\","
	    "\"verification_url\":\"https://www.google.com/device\","
	    "\"expires_in\":\"1800\"}";
	assert_int_equal(oauth2_parse_device_response(b, strlen(b), &d, err,
	    sizeof err), 0);
	assert_string_equal(d.verification_uri,
	    "https://www.google.com/device");
	assert_null(d.verification_uri_complete);
	assert_int_equal(d.interval, 5);
	oauth2_device_clear(&d);

	b = "{\"user_code\":\"AB\",\"verification_uri\":\"https://x\","
	    "\"expires_in\":10}";
	assert_int_equal(oauth2_parse_device_response(b, strlen(b), &d, err,
	    sizeof err), -EINVAL);
	assert_non_null(strstr(err, "device_code is missing"));
	b = "{\"device_code\":\"DC\",\"user_code\":\"AB\","
	    "\"verification_uri\":\"https://x\"}";
	assert_int_equal(oauth2_parse_device_response(b, strlen(b), &d, err,
	    sizeof err), -EINVAL);
	assert_non_null(strstr(err, "expires_in"));
	b = "{\"device_code\":\"DC\",\"user_code\":\"AB\","
	    "\"verification_uri\":\"https://x\",\"expires_in\":10,"
	    "\"interval\":\"soon\"}";
	assert_int_equal(oauth2_parse_device_response(b, strlen(b), &d, err,
	    sizeof err), -EINVAL);
}

/* ---- the token file ---------------------------------------------------- */

static void
token_path(char *buf, size_t len, const char *sub, const char *name)
{
	char archive[256];

	snprintf(archive, sizeof archive, "%s/%s", tmpdir, sub);
	mkdir(archive, 0755);
	assert_int_equal(oauth2_token_path(archive, name, buf, len), 0);
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void
t_file_roundtrip(void **state)
{
	struct oauth2_tokens t = { 0 }, u = { 0 };
	char path[512], dir[512];
	struct stat st;
	int64_t before = (int64_t)time(NULL);

	token_path(path, sizeof path, "rt", "alice");
	snprintf(dir, sizeof dir, "%s/rt/oauth2", tmpdir);
	t.access_token = strdup("AT-1");
	t.refresh_token = strdup("RT-1");
	t.scope = strdup("offline_access https://outlook.office.com/IMAP");
	t.expires_at = NOW;
	assert_int_equal(oauth2_tokens_save(path, &t), 0);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);

	/* A second save replaces the first; updated_at is its time. */
	free(t.access_token);
	t.access_token = strdup("AT-2");
	assert_int_equal(oauth2_tokens_save(path, &t), 0);
	assert_int_equal(oauth2_tokens_load(path, &u), 0);
	assert_string_equal(u.access_token, "AT-2");
	assert_string_equal(u.refresh_token, "RT-1");
	assert_string_equal(u.scope, t.scope);
	assert_int_equal(u.expires_at, NOW);
	assert_true(u.updated_at >= before && u.updated_at <= time(NULL));
	oauth2_tokens_clear(&u);

	/* No refresh token (client_credentials): left out, read as NULL. */
	secret_free(t.refresh_token);
	t.refresh_token = NULL;
	assert_int_equal(oauth2_tokens_save(path, &t), 0);
	assert_int_equal(oauth2_tokens_load(path, &u), 0);
	assert_null(u.refresh_token);
	assert_string_equal(u.access_token, "AT-2");
	oauth2_tokens_clear(&u);
	oauth2_tokens_clear(&t);
}

static void
t_file_escapes(void **state)
{
	struct oauth2_tokens t = { 0 }, u = { 0 };
	char path[512];

	/* save() writes whatever it is given as valid JSON; load() then
	 * applies the token rules and refuses what is not printable. */
	token_path(path, sizeof path, "esc", "bob");
	t.access_token = strdup("A\"B\\C");
	t.expires_at = 5;
	assert_int_equal(oauth2_tokens_save(path, &t), 0);
	assert_int_equal(oauth2_tokens_load(path, &u), 0);
	assert_string_equal(u.access_token, "A\"B\\C");
	oauth2_tokens_clear(&u);
	free(t.access_token);
	t.access_token = strdup("A\nB");
	assert_int_equal(oauth2_tokens_save(path, &t), 0);
	assert_int_equal(oauth2_tokens_load(path, &u), -EINVAL);
	oauth2_tokens_clear(&t);
}

static void
t_file_refused(void **state)
{
	struct oauth2_tokens u = { 0 };
	char path[512], link[600], big[OAUTH2_MAX_RESPONSE + 100];

	token_path(path, sizeof path, "ref", "carol");
	assert_int_equal(oauth2_tokens_load(path, &u), -ENOENT);
	snprintf(link, sizeof link, "%s/ref/oauth2", tmpdir);
	assert_int_equal(mkdir(link, 0700), 0);
	write_file(path, "{\"access_token\":\"x\"}", 0644);
	assert_int_equal(oauth2_tokens_load(path, &u), -EPERM);
	write_file(path, "{\"access_token\":\"x\"}", 0640);
	assert_int_equal(oauth2_tokens_load(path, &u), -EPERM);
	write_file(path, "{\"access_token\":\"x\"}", 0600);
	assert_int_equal(oauth2_tokens_load(path, &u), 0);
	oauth2_tokens_clear(&u);
	/* A symlink is not followed: whoever placed it picks the file. */
	snprintf(link, sizeof link, "%s.link", path);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(oauth2_tokens_load(link, &u), -EPERM);
	/* Malformed, wrong types, neither token, oversized. */
	write_file(path, "{\"access_token\":", 0600);
	assert_int_equal(oauth2_tokens_load(path, &u), -EINVAL);
	write_file(path, "{\"access_token\":\"x\",\"expires_at\":\"1\"}",
	    0600);
	assert_int_equal(oauth2_tokens_load(path, &u), -EINVAL);
	write_file(path, "{\"scope\":\"x\"}", 0600);
	assert_int_equal(oauth2_tokens_load(path, &u), -EINVAL);
	memset(big, ' ', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	memcpy(big, "{\"access_token\":\"x\"}", 20);
	write_file(path, big, 0600);
	assert_int_equal(oauth2_tokens_load(path, &u), -EINVAL);
	assert_null(u.access_token);
}

static int
count_tmp(const char *dir)
{
	struct dirent *de;
	DIR *d;
	int n = 0;

	assert_non_null(d = opendir(dir));
	while ((de = readdir(d)) != NULL)
		if (strstr(de->d_name, ".tmp") != NULL)
			n++;
	closedir(d);
	return n;
}

/* A save that fails half-way leaves the old file whole and no litter. */
static void
t_file_atomic(void **state)
{
	struct oauth2_tokens t = { 0 }, u = { 0 };
	struct rlimit old, small;
	char path[512], dir[512], isdir[600], sub[700];

	token_path(path, sizeof path, "atomic", "dave");
	snprintf(dir, sizeof dir, "%s/atomic/oauth2", tmpdir);
	t.access_token = strdup("OLD-ACCESS");
	t.refresh_token = strdup("OLD-REFRESH");
	assert_int_equal(oauth2_tokens_save(path, &t), 0);
	oauth2_tokens_clear(&t);
	t.access_token = strdup("NEW-ACCESS");
	t.refresh_token = strdup("NEW-REFRESH");

	/* Writes beyond 16 bytes fail with EFBIG, even for root. */
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	small = old;
	small.rlim_cur = 16;	/* the soft limit, so it can be raised back */
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	assert_int_equal(oauth2_tokens_save(path, &t), -EFBIG);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(oauth2_tokens_load(path, &u), 0);
	assert_string_equal(u.refresh_token, "OLD-REFRESH");
	oauth2_tokens_clear(&u);
	assert_int_equal(count_tmp(dir), 0);

	/* A directory we may not write to (only meaningful without root). */
	if (geteuid() != 0) {
		assert_int_equal(chmod(dir, 0500), 0);
		assert_int_equal(oauth2_tokens_save(path, &t), -EACCES);
		assert_int_equal(chmod(dir, 0700), 0);
		assert_int_equal(oauth2_tokens_load(path, &u), 0);
		assert_string_equal(u.refresh_token, "OLD-REFRESH");
		oauth2_tokens_clear(&u);
	}
	/* The path is a non-empty directory: rename fails, the tmp file
	 * goes. */
	snprintf(isdir, sizeof isdir, "%s/isdir", dir);
	assert_int_equal(mkdir(isdir, 0700), 0);
	snprintf(sub, sizeof sub, "%s/x", isdir);
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_true(oauth2_tokens_save(isdir, &t) < 0);
	assert_int_equal(count_tmp(dir), 0);
	oauth2_tokens_clear(&t);
}

/* The root CLI writes tokens the daemon's user can read. */
static void
t_file_owner(void **state)
{
	struct oauth2_tokens t = { 0 };
	char archive[512], path[600];
	struct stat st;

	if (geteuid() != 0)
		skip();
	snprintf(archive, sizeof archive, "%s/owned", tmpdir);
	assert_int_equal(mkdir(archive, 0700), 0);
	assert_int_equal(chown(archive, 65534, 65534), 0);
	assert_int_equal(oauth2_token_path(archive, "erin", path,
	    sizeof path), 0);
	t.access_token = strdup("A");
	assert_int_equal(oauth2_tokens_save(path, &t), 0);
	oauth2_tokens_clear(&t);
	/* The new oauth2 directory and the file both belong to 65534. */
	*strrchr(path, '/') = '\0';
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, 65534);
	assert_int_equal(st.st_mode & 07777, 0700);
	strcat(path, "/erin.json");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, 65534);
	assert_int_equal(st.st_mode & 07777, 0600);
}

static void
t_path(void **state)
{
	char buf[32];

	/* "/a/oauth2/bob.json" is 18 bytes: fits in 19, not in 18. */
	assert_int_equal(oauth2_token_path("/a", "bob", buf, 19), 0);
	assert_string_equal(buf, "/a/oauth2/bob.json");
	assert_int_equal(oauth2_token_path("/a", "bob", buf, 18),
	    -ENAMETOOLONG);
	assert_int_equal(oauth2_token_path("/a", "bob", buf, 0),
	    -ENAMETOOLONG);
	/* The name may not leave the directory. */
	assert_int_equal(oauth2_token_path("/a", "../x", buf, sizeof buf),
	    -EINVAL);
	assert_int_equal(oauth2_token_path("/a", "x/y", buf, sizeof buf),
	    -EINVAL);
	assert_int_equal(oauth2_token_path("/a", "", buf, sizeof buf),
	    -EINVAL);
	assert_int_equal(oauth2_token_path("/a", "a@b.example", buf,
	    sizeof buf), 0);
}

static void
t_status_names(void **state)
{
	assert_string_equal(oauth2_status_name(OAUTH2_OK), "ok");
	assert_string_equal(oauth2_status_name(OAUTH2_ERR_LOGIN), "login");
	assert_string_equal(oauth2_status_name(OAUTH2_ERR_LOCAL), "local");
	assert_string_equal(oauth2_status_name((enum oauth2_status)99),
	    "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_parse_good),
		cmocka_unit_test(t_parse_bad),
		cmocka_unit_test(t_parse_limits),
		cmocka_unit_test(t_parse_error_body),
		cmocka_unit_test(t_parse_device),
		cmocka_unit_test(t_file_roundtrip),
		cmocka_unit_test(t_file_escapes),
		cmocka_unit_test(t_file_refused),
		cmocka_unit_test(t_file_atomic),
		cmocka_unit_test(t_file_owner),
		cmocka_unit_test(t_path),
		cmocka_unit_test(t_status_names),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
