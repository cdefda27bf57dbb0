/*
 * test_store_spare.c - temp files made ahead by the spare thread: a
 * message takes one without creating a file, the loop creates its own
 * when the pool is empty or the thread failed, close leaves no spare, no
 * descriptor and no thread behind, and a read-only handle starts nothing.
 */
#define _GNU_SOURCE	/* nftw() */
#include <sys/resource.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store.h"
#include "store/store_private.h"

#define STORE_FX_TAG	"spare"
#include "store_fixture.h"

static int
threads(void)
{
	return store_fx_entries("/proc/self/task");
}

static int
open_fds(void)
{
	return store_fx_entries("/proc/self/fd");
}

/* The pool once the thread sleeps; it must fall asleep. */
static struct store_spares_stat
spares(struct store *s)
{
	struct store_spares_stat st;

	store_test_spares(s, &st);
	assert_true(st.started);
	assert_true(st.settled);
	return st;
}

/* Begin a message and wait until the pool is full. */
static struct store_blob *
first_blob(struct store *s)
{
	struct store_blob *b;
	struct store_spares_stat st;

	assert_int_equal(store_blob_begin(s, &b), 0);
	st = spares(s);
	assert_int_equal(st.cap, STORE_TMP_SPARES);
	assert_int_equal(st.n, st.cap);
	assert_int_equal(st.errors, 0);
	return b;
}

static void
test_spare_is_used(void **state)
{
	struct fx *fx = *state;
	const char *data = "Subject: s\r\n\r\nspare\r\n";
	struct store *s;
	struct store_blob *b1, *b2;
	struct store_msg m = { .archive_user = "alice", .profile = "p",
	    .mailbox = "m", .folder = "INBOX", .uidvalidity = 1, .uid = 1 };
	char before[STORE_TMP_SPARES + 1][STORE_TMPNAME_LEN];
	struct stat st;
	int t0, i;

	s = open_rw(fx);
	t0 = threads();
	b1 = first_blob(s);
	assert_int_equal(threads(), t0 + 1);
	assert_int_equal(tmp_entries(fx), 1 + STORE_TMP_SPARES);

	/* The next message takes a file that was there before: no create. */
	assert_int_equal(store_blob_begin(s, &b2), 0);
	assert_int_equal(tmp_entries(fx), 1 + STORE_TMP_SPARES);
	assert_int_equal(spares(s).n, STORE_TMP_SPARES - 1);
	assert_true(tmp_has(fx, b2->tmpname));
	assert_string_not_equal(b1->tmpname, b2->tmpname);
	assert_int_equal(fstat(b2->fd, &st), 0);
	assert_int_equal(st.st_mode & 07777, STORE_FILE_MODE);
	assert_int_equal(st.st_size, 0);

	/* It is an ordinary temp file: the message commits. */
	assert_int_equal(store_blob_write(b2, data, strlen(data)), 0);
	assert_int_equal(store_blob_end(b2), 0);
	m.blob = b2;
	assert_int_equal(store_commit(s, &m, 1, fx->err, sizeof fx->err), 0);
	store_blob_free(b1);
	assert_int_equal(tmp_entries(fx), STORE_TMP_SPARES - 1);

	/*
	 * Half the pool taken (it wakes at a quarter): full again.  Held
	 * while taking, or a refill racing the takes could end above the
	 * wake mark and rightly stay there.
	 */
	store_test_spares_hold(s, true);
	for (i = 0; i < STORE_TMP_SPARES / 2; i++) {
		assert_int_equal(store_blob_begin(s, &b1), 0);
		snprintf(before[i], sizeof before[i], "%s", b1->tmpname);
		store_blob_free(b1);
		assert_false(tmp_has(fx, before[i]));
	}
	store_test_spares_hold(s, false);
	assert_int_equal(spares(s).n, STORE_TMP_SPARES);
	assert_int_equal(tmp_entries(fx), STORE_TMP_SPARES);
	store_close(s);
	assert_int_equal(threads(), t0);
}

/* Every file the message stored is there, with its bytes. */
static void
test_spare_commit_bytes(void **state)
{
	struct fx *fx = *state;
	const char *data = "Subject: b\r\n\r\nbytes of a spare\r\n";
	struct store *s;
	struct store_blob *b;
	struct store_msg m = { .archive_user = "alice", .profile = "p",
	    .mailbox = "m", .folder = "INBOX", .uidvalidity = 1, .uid = 2 };
	char path[512], buf[128];
	struct stat st;
	ssize_t n;
	int fd;

	s = open_rw(fx);
	store_blob_free(first_blob(s));
	assert_int_equal(store_blob_begin(s, &b), 0);
	assert_int_equal(store_blob_write(b, data, strlen(data)), 0);
	assert_int_equal(store_blob_end(b), 0);
	assert_int_equal(store_message_path(s, store_blob_hex(b), path,
	    sizeof path), 0);
	m.blob = b;
	assert_int_equal(store_commit(s, &m, 1, fx->err, sizeof fx->err), 0);
	assert_true((fd = open(path, O_RDONLY)) >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_mode & 07777, STORE_FILE_MODE);
	n = read(fd, buf, sizeof buf);
	close(fd);
	assert_int_equal(n, strlen(data));
	assert_memory_equal(buf, data, strlen(data));
	store_close(s);
}

/* An empty pool never makes a message wait: the loop creates the file. */
static void
test_empty_pool_falls_back(void **state)
{
	struct fx *fx = *state;
	struct store *s;
	struct store_blob *b[STORE_TMP_SPARES + 2];
	int i;

	s = open_rw(fx);
	b[0] = first_blob(s);
	store_test_spares_hold(s, true);
	for (i = 1; i <= STORE_TMP_SPARES; i++)
		assert_int_equal(store_blob_begin(s, &b[i]), 0);
	assert_int_equal(spares(s).n, 0);
	assert_int_equal(tmp_entries(fx), 1 + STORE_TMP_SPARES);
	/* Made here and now: one more file in tmp/, the pool still empty. */
	assert_int_equal(store_blob_begin(s, &b[i]), 0);
	assert_int_equal(tmp_entries(fx), 2 + STORE_TMP_SPARES);
	assert_int_equal(spares(s).n, 0);
	assert_true(tmp_has(fx, b[i]->tmpname));
	assert_int_equal(store_blob_write(b[i], "x\r\n", 3), 0);
	assert_int_equal(store_blob_end(b[i]), 0);
	/* Released, the thread fills the pool again. */
	store_test_spares_hold(s, false);
	assert_int_equal(spares(s).n, STORE_TMP_SPARES);
	for (i = 0; i <= STORE_TMP_SPARES + 1; i++)
		store_blob_free(b[i]);
	assert_int_equal(tmp_entries(fx), STORE_TMP_SPARES);
	store_close(s);
	assert_int_equal(tmp_entries(fx), 0);
}

/* Lowest descriptor number free now: the next open gets it. */
static int
lowest_free_fd(void)
{
	int fd = dup(0);

	assert_true(fd >= 0);
	close(fd);
	return fd;
}

/*
 * The thread cannot create files (EMFILE): it rests and tries later; the
 * message creates its file itself and reports the error; once the limit
 * is back, messages go on at once and the pool fills again.
 */
static void
test_thread_error_is_not_fatal(void **state)
{
	struct fx *fx = *state;
	struct store *s;
	struct store_blob *b[STORE_TMP_SPARES + 2], *x = NULL;
	struct store_spares_stat st;
	struct rlimit old, low;
	int i;

	s = open_rw(fx);
	b[0] = first_blob(s);
	store_test_spares_hold(s, true);
	for (i = 1; i <= STORE_TMP_SPARES; i++)
		assert_int_equal(store_blob_begin(s, &b[i]), 0);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)lowest_free_fd();
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	store_test_spares_hold(s, false);
	st = spares(s);			/* asleep: resting after EMFILE */
	assert_true(st.errors >= 1);
	assert_int_equal(st.n, 0);
	assert_int_equal(store_blob_begin(s, &x), -EMFILE);
	assert_null(x);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	/* The thread still rests: this one is made here, and works. */
	assert_int_equal(store_blob_begin(s, &b[i]), 0);
	assert_true(tmp_has(fx, b[i]->tmpname));
	/* After its rest (500 ms) the thread fills the pool again. */
	for (i = 0; i < 300; i++) {
		st = spares(s);
		if (st.n == st.cap)
			break;
		nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
	}
	assert_int_equal(st.n, STORE_TMP_SPARES);
	for (i = 0; i <= STORE_TMP_SPARES + 1; i++)
		store_blob_free(b[i]);
	store_close(s);
	assert_int_equal(tmp_entries(fx), 0);
}

/* Close: no spare in tmp/, no descriptor open, no thread left. */
static void
test_close_leaves_nothing(void **state)
{
	struct fx *fx = *state;
	struct store *s;
	struct store_blob *b[STORE_TMP_SPARES / 2 + 1];
	int fds, t0, i;

	store_close(open_rw(fx));
	fds = open_fds();
	t0 = threads();
	s = open_rw(fx);
	store_blob_free(first_blob(s));
	assert_true(open_fds() >= fds + STORE_TMP_SPARES);
	store_close(s);
	assert_int_equal(tmp_entries(fx), 0);
	assert_int_equal(open_fds(), fds);
	assert_int_equal(threads(), t0);

	/* Closed while the thread is (likely) busy filling: the same. */
	s = open_rw(fx);
	store_blob_free(first_blob(s));
	for (i = 0; i <= STORE_TMP_SPARES / 2; i++)
		assert_int_equal(store_blob_begin(s, &b[i]), 0);
	for (i = 0; i <= STORE_TMP_SPARES / 2; i++)
		store_blob_free(b[i]);
	store_close(s);
	assert_int_equal(tmp_entries(fx), 0);
	assert_int_equal(open_fds(), fds);
	assert_int_equal(threads(), t0);
}

/*
 * Between runs tmp/ holds no spare (an idle daemon keeps its archive
 * open): the end of the last run open empties the pool, on whatever
 * handle it is recorded (the commit thread's clone, usually).
 */
static void
test_last_run_end_empties_pool(void **state)
{
	struct fx *fx = *state;
	struct store *s, *c;
	struct store_blob *b, *b2;
	struct store_counts counts = { 0 };
	int64_t r1, r2;
	int fds;

	s = open_rw(fx);
	assert_int_equal(store_clone(s, &c, fx->err, sizeof fx->err), 0);
	assert_int_equal(store_run_begin(s, "a", "manual", &r1), 0);
	assert_int_equal(store_run_begin(s, "b", "manual", &r2), 0);
	b = first_blob(s);
	fds = open_fds();
	/* Another run is still open: the pool stays. */
	assert_int_equal(store_run_finish(s, r1, "succeeded", &counts), 0);
	assert_int_equal(spares(s).n, STORE_TMP_SPARES);
	assert_int_equal(tmp_entries(fx), 1 + STORE_TMP_SPARES);
	/* The last one ends on the clone: only the message's file is left. */
	assert_int_equal(store_run_finish(c, r2, "succeeded", &counts), 0);
	assert_int_equal(spares(s).n, 0);
	assert_int_equal(tmp_entries(fx), 1);
	assert_int_equal(open_fds(), fds - STORE_TMP_SPARES);
	/* The next message wakes the thread again. */
	assert_int_equal(store_blob_begin(s, &b2), 0);
	assert_int_equal(spares(s).n, STORE_TMP_SPARES);
	assert_int_equal(tmp_entries(fx), 2 + STORE_TMP_SPARES);
	store_blob_free(b);
	store_blob_free(b2);
	/* A run's end without a run open changes nothing. */
	assert_int_equal(store_run_finish(s, r2, "succeeded", &counts), 0);
	assert_int_equal(spares(s).n, STORE_TMP_SPARES);
	/* A new run leaves an emptied pool empty until its first message
	 * (a kill during its login leaves no file in tmp/). */
	assert_int_equal(store_run_begin(s, "a", "manual", &r1), 0);
	assert_int_equal(store_run_finish(c, r1, "succeeded", &counts), 0);
	assert_int_equal(spares(s).n, 0);
	assert_int_equal(store_run_begin(s, "a", "manual", &r2), 0);
	assert_int_equal(spares(s).n, 0);
	assert_int_equal(tmp_entries(fx), 0);
	assert_int_equal(store_run_finish(s, r2, "succeeded", &counts), 0);
	store_close(c);
	store_close(s);
	assert_int_equal(tmp_entries(fx), 0);
}

/* A handle that only reads, or writes no message, starts no thread. */
static void
test_no_thread_without_messages(void **state)
{
	struct fx *fx = *state;
	struct store *s, *r;
	struct store_blob *b = NULL;
	struct store_spares_stat st;
	int64_t run;
	int t0;

	t0 = threads();
	s = open_rw(fx);
	assert_int_equal(threads(), t0);
	store_test_spares(s, &st);
	assert_false(st.started);
	assert_int_equal(store_open(fx->root, STORE_RDONLY, &r, fx->err,
	    sizeof fx->err), 0);
	assert_int_equal(store_blob_begin(r, &b), -EROFS);
	assert_null(b);
	assert_int_equal(store_run_begin(r, "p", "manual", &run), -EROFS);
	store_test_spares(r, &st);
	assert_false(st.started);
	assert_int_equal(threads(), t0);
	store_close(r);
	store_close(s);
	assert_int_equal(tmp_entries(fx), 0);
}

/* Too few descriptors to spare any: no thread, messages work anyway. */
static void
test_low_fd_limit_no_thread(void **state)
{
	struct fx *fx = *state;
	struct store *s;
	struct store_blob *b;
	struct store_spares_stat st;
	struct rlimit old, low;
	int t0;

	s = open_rw(fx);
	t0 = threads();
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = 60;		/* 60 / 32: one spare, not worth it */
	assert_true(open_fds() < 50);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	assert_int_equal(store_blob_begin(s, &b), 0);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	store_test_spares(s, &st);
	assert_false(st.started);
	assert_int_equal(threads(), t0);
	assert_int_equal(tmp_entries(fx), 1);
	store_blob_free(b);
	assert_int_equal(tmp_entries(fx), 0);
	store_close(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, store_fx_setup, \
    store_fx_teardown)
		T(test_spare_is_used),
		T(test_spare_commit_bytes),
		T(test_empty_pool_falls_back),
		T(test_thread_error_is_not_fatal),
		T(test_close_leaves_nothing),
		T(test_last_run_end_empties_pool),
		T(test_no_thread_without_messages),
		T(test_low_fd_limit_no_thread),
#undef T
	};

	return cmocka_run_group_tests_name("store_spare", tests, NULL, NULL);
}
