/*
 * test_store_print.c - the archive store's run protocol and printers
 * (JSON checked by Python's json module), and a read-only handle beside
 * a writer.
 */
#define _GNU_SOURCE	/* nftw() */
#include <sys/stat.h>

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/util.h"
#include "store/store.h"
#include "store_fixture.h"

#define PYTHON "/usr/bin/python3"

/* ---- protocol and printers -------------------------------------------- */

/* Feed `json` to Python, which must parse it and run `check` on it (as
 * d); returns what the check prints. */
static char *
python_check(struct fx *fx, const char *json, const char *check)
{
	char path[256], cmd[2048], *out;
	FILE *f, *p;
	size_t n;

	snprintf(path, sizeof path, "%s/out.json", fx->dir);
	assert_non_null(f = fopen(path, "w"));
	fputs(json, f);
	fclose(f);
	snprintf(cmd, sizeof cmd, PYTHON " -c 'import json,sys\n"
	    "d = json.load(open(sys.argv[1], encoding=\"utf-8\"))\n%s' %s",
	    check, path);
	assert_non_null(p = popen(cmd, "r"));
	assert_non_null(out = calloc(1, 4096));
	n = fread(out, 1, 4095, p);
	out[n] = '\0';
	assert_int_equal(pclose(p), 0);
	return out;
}

/* Print into a string. */
static char *
capture(int (*fn)(struct store *, const void *, bool, FILE *),
    struct store *s, const void *arg, bool json, int want)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	assert_non_null(f = open_memstream(&buf, &len));
	assert_int_equal(fn(s, arg, json, f), want);
	fclose(f);
	return buf;
}

static int
print_protocol(struct store *s, const void *arg, bool json, FILE *f)
{
	return store_print_protocol(s, *(const int64_t *)arg, json, f);
}

static int
print_runs(struct store *s, const void *arg, bool json, FILE *f)
{
	return store_print_runs(s, arg, json, f);
}

static int
print_messages(struct store *s, const void *arg, bool json, FILE *f)
{
	const char *const *a = arg;

	return store_print_messages(s, a[0], a[1], json, f);
}

static int64_t
make_run(struct store *s)
{
	struct store_counts c = { 3, 2, 1, 0, 1234 }, fc = { 3, 2, 1, 0, 1234 };
	int64_t run;

	assert_int_equal(store_run_begin(s, "alice", "manual", &run), 0);
	assert_int_equal(store_run_event(s, run, STORE_INFO, NULL, NULL, 0,
	    "connected: TLSv1.3"), 0);
	assert_int_equal(store_run_event(s, run, STORE_WARNING, "alice",
	    "INBOX", 17, "odd \"text\" \\ with\nnewline \x01 bad \xff\xfe "
	    "ok \xc3\xa9 \xc2\x9b"), 0);
	assert_int_equal(store_run_event(s, run, 9, NULL, NULL, 0, "x"),
	    -EINVAL);
	assert_int_equal(store_run_folder(s, run, "alice", "INBOX", &fc), 0);
	fc.found = 4;
	assert_int_equal(store_run_folder(s, run, "alice", "INBOX", &fc), 0);
	assert_int_equal(store_run_finish(s, run, "bogus", &c), -EINVAL);
	assert_int_equal(store_run_finish(s, run, "succeeded", &c), 0);
	return run;
}

static void
test_protocol_json(void **state)
{
	struct fx *fx = *state;
	struct store *s;
	int64_t run, last, nope = 999;
	char *json, *out;

	s = open_rw(fx);
	run = make_run(s);
	assert_int_equal(store_last_run(s, "alice", &last), 0);
	assert_int_equal(last, run);
	assert_int_equal(store_last_run(s, "nobody", &last), -ENOENT);
	assert_int_equal(store_run_finish(s, nope, "failed",
	    &(struct store_counts){ 0 }), -ENOENT);
	json = capture(print_protocol, s, &run, true, 0);
	out = python_check(fx, json,
	    "e = d[\"events\"]\n"
	    "print(d[\"run\"], d[\"profile\"], d[\"trigger\"], d[\"status\"],"
	    " d[\"counts\"][\"archived\"], d[\"counts\"][\"bytes\"],"
	    " len(d[\"folders\"]), d[\"folders\"][0][\"found\"],"
	    " d[\"started\"].endswith(\"Z\"), d[\"finished\"] is not None)\n"
	    "print(e[0][\"level\"], e[0][\"mailbox\"], e[0][\"uid\"],"
	    " e[1][\"level\"], e[1][\"folder\"], e[1][\"uid\"])\n"
	    "print(ascii(e[1][\"text\"]))");
	assert_string_equal(out,
	    "1 alice manual succeeded 2 1234 1 4 True True\n"
	    "info None None warning INBOX 17\n"
	    "'odd \"text\" \\\\ with\\nnewline \\x01 bad \\ufffd\\ufffd ok "
	    "\\xe9 \\x9b'\n");
	free(out);
	free(json);
	json = capture(print_protocol, s, &nope, true, -ENOENT);
	free(json);
	store_close(s);
}

static void
test_protocol_text(void **state)
{
	struct fx *fx = *state;
	struct store *s;
	int64_t run;
	char *text;

	s = open_rw(fx);
	run = make_run(s);
	text = capture(print_protocol, s, &run, false, 0);
	assert_non_null(strstr(text, "run 1  profile alice  trigger manual  "
	    "status succeeded\nstarted 20"));
	assert_non_null(strstr(text, "found 3  archived 2  already archived 1"
	    "  failed 0  bytes 1234\n"));
	assert_non_null(strstr(text, "mailbox alice  folder INBOX: found 4 "
	    "archived 2 skipped 1 failed 0 bytes 1234\n"));
	assert_non_null(strstr(text, "info    connected: TLSv1.3\n"));
	/* Control bytes, C1 and bad UTF-8 cannot reach the terminal raw. */
	assert_non_null(strstr(text, "warning alice INBOX uid 17 odd \"text\" "
	    "\\ with\\x0anewline \\x01 bad \\xff\\xfe ok \xc3\xa9 "
	    "\\xc2\\x9b\n"));
	free(text);
	store_close(s);
}

static void
test_runs_list(void **state)
{
	struct fx *fx = *state;
	struct store *s;
	int64_t r1, r2, r3;
	char *json, *out, *text;

	s = open_rw(fx);
	r1 = make_run(s);
	assert_int_equal(store_run_begin(s, "bob", "schedule", &r2), 0);
	r3 = make_run(s);
	json = capture(print_runs, s, NULL, true, 0);
	out = python_check(fx, json, "print([r[\"run\"] for r in d],"
	    " [r[\"status\"] for r in d], d[1][\"finished\"],"
	    " \"events\" in d[0])");
	assert_string_equal(out, "[3, 2, 1] ['succeeded', 'running', "
	    "'succeeded'] None False\n");
	free(out);
	free(json);
	json = capture(print_runs, s, "alice", true, 0);
	out = python_check(fx, json, "print([r[\"run\"] for r in d])");
	assert_string_equal(out, "[3, 1]\n");
	free(out);
	free(json);
	text = capture(print_runs, s, NULL, false, 0);
	assert_non_null(strstr(text, "RUN "));
	assert_non_null(strstr(text, "\n2       "));
	assert_non_null(strstr(text, "running"));
	assert_non_null(strstr(text, "bob  schedule\n"));
	free(text);
	(void)r1;
	(void)r2;
	(void)r3;
	store_close(s);
}

static void
test_messages_print(void **state)
{
	struct fx *fx = *state;
	const char *all[2] = { "alice", NULL }, *sent[2] = { "alice", "Sent" };
	struct store *s;
	struct store_msg m[3];
	char *json, *out, *text;
	int64_t run;

	s = open_rw(fx);
	assert_int_equal(store_run_begin(s, "alice", "manual", &run), 0);
	m[0] = msg(make_blob(s, "one"), "alice", "INBOX", 1);
	m[0].from = "J\xc3\xb6rg <j@example.com>";
	m[0].subject = "Hello \"world\"";
	m[0].internaldate = 1764098095;
	m[0].run_id = run;
	m[1] = msg(make_blob(s, "one"), "alice", "Sent", 3);
	m[1].run_id = run;
	m[2] = msg(make_blob(s, "two"), "alice", "INBOX", 2);
	assert_int_equal(store_commit(s, m, 3, fx->err, sizeof fx->err), 0);
	json = capture(print_messages, s, all, true, 0);
	out = python_check(fx, json,
	    "print(len(d), d[0][\"from\"] == \"J\\u00f6rg <j@example.com>\","
	    " d[0][\"subject\"], d[0][\"internaldate\"], d[0][\"first_run\"],"
	    " d[0][\"size\"], len(d[0][\"hash\"]), d[1][\"to\"],"
	    " d[1][\"first_run\"])\n"
	    "print([(l[\"folder\"], l[\"uid\"], l[\"uidvalidity\"])"
	    " for l in d[0][\"locations\"]])");
	assert_string_equal(out, "2 True Hello \"world\" 2025-11-25T19:14:55Z "
	    "1 3 64 None None\n[('INBOX', 1, 100), ('Sent', 3, 100)]\n");
	free(out);
	free(json);
	json = capture(print_messages, s, sent, true, 0);
	out = python_check(fx, json, "print(len(d), d[0][\"size\"])");
	assert_string_equal(out, "1 3\n");
	free(out);
	free(json);
	text = capture(print_messages, s, all, false, 0);
	assert_non_null(strstr(text, "Hello \"world\"  (INBOX:1, Sent:3)\n"));
	assert_non_null(strstr(text, "(INBOX:2)\n"));
	free(text);
	store_close(s);
}

static void
test_rdonly_beside_writer(void **state)
{
	struct fx *fx = *state;
	struct store *w, *r = NULL;
	struct store_blob *b;
	struct store_msg m;
	uint32_t *v;
	size_t n;
	int64_t run;
	char *text;

	w = open_rw(fx);
	m = msg(make_blob(w, "hello"), "alice", "INBOX", 5);
	assert_int_equal(store_commit(w, &m, 1, fx->err, sizeof fx->err), 0);
	assert_int_equal(store_run_begin(w, "alice", "manual", &run), 0);
	assert_int_equal(store_open(fx->root, STORE_RDONLY, &r, fx->err,
	    sizeof fx->err), 0);
	assert_int_equal(store_known_uids(r, "alice", "alice", "INBOX", 100,
	    &v, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(v[0], 5);
	free(v);
	text = capture(print_protocol, r, &run, false, 0);
	assert_non_null(strstr(text, "status running"));
	free(text);
	assert_int_equal(store_blob_begin(r, &b), -EROFS);
	assert_int_equal(store_run_begin(r, "alice", "manual", &run), -EROFS);
	/* The writer keeps writing while the reader is open. */
	assert_int_equal(store_run_event(w, run, STORE_INFO, NULL, NULL, 0,
	    "still writing"), 0);
	store_close(r);
	store_close(w);
	/* Without a writer, too. */
	assert_int_equal(store_open(fx->root, STORE_RDONLY, &r, fx->err,
	    sizeof fx->err), 0);
	assert_int_equal(store_last_run(r, "alice", &run), 0);
	store_close(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, store_fx_setup, \
    store_fx_teardown)
		T(test_protocol_json),
		T(test_protocol_text),
		T(test_runs_list),
		T(test_messages_print),
		T(test_rdonly_beside_writer),
#undef T
	};

	umask(022);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
