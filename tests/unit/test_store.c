/*
 * test_store.c - the archive store: layout and lock, temp sweep, blobs,
 * durable batch commits with deduplication, fault injection on fsync and
 * rename (no index row without its file), incremental state.  The run
 * protocol and the printers: test_store_print.c.
 */
#define _GNU_SOURCE	/* nftw() */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
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
#include "store/store_private.h"
#include "store_fixture.h"

static void
path_of(struct fx *fx, const char *rel, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", fx->root, rel);
}

static int
count_files(struct fx *fx, const char *rel)
{
	char path[256];

	path_of(fx, rel, path, sizeof path);
	return store_fx_entries(path);
}

/*
 * Temp files of messages in tmp/: the spares the pool holds are not
 * messages.  Counted once the spare thread sleeps, so tmp/ holds still.
 */
static int
tmp_files(struct fx *fx, struct store *s)
{
	struct store_spares_stat st;

	store_test_spares(s, &st);
	assert_true(!st.started || st.settled);
	return count_files(fx, "tmp") - (int)st.n;
}

/* An independent connection, so the test sees what is committed. */
static int64_t
sql_int(struct fx *fx, const char *sql)
{
	char path[256];
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v;

	path_of(fx, "index.sqlite", path, sizeof path);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static char *
read_file(const char *path, size_t *ret_len)
{
	FILE *f;
	char *buf;
	long n;

	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	assert_non_null(buf = malloc((size_t)n + 1));
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*ret_len = (size_t)n;
	return buf;
}

/*
 * Rule 1, checked from outside: every blobs row has its file, of the
 * recorded size, whose SHA-256 is its name; every message row has its
 * blob.  Returns the number of blobs rows.
 */
static int
verify_no_row_without_file(struct fx *fx)
{
	char path[256], hex[65];
	sqlite3 *db;
	sqlite3_stmt *st;
	int n = 0;

	path_of(fx, "index.sqlite", path, sizeof path);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT hash, size FROM blobs",
	    -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *h = (const char *)sqlite3_column_text(st, 0);
		size_t len;
		char *data;
		struct stat sb;

		snprintf(path, sizeof path, "%s/messages/%.2s/%s",
		    fx->root, h, h);
		assert_non_null(data = read_file(path, &len));
		assert_int_equal(len, sqlite3_column_int64(st, 1));
		sha256_hex(data, len, hex);
		assert_string_equal(hex, h);
		assert_int_equal(stat(path, &sb), 0);
		assert_int_equal(sb.st_mode & 07777, 0640);
		free(data);
		n++;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM messages WHERE "
	    "hash NOT IN (SELECT hash FROM blobs)"), 0);
	return n;
}

/* ---- open, lock, sweep ------------------------------------------------ */

static void
test_open_layout(void **state)
{
	struct fx *fx = *state;
	struct store *s;
	char path[256], want[32], *lock;
	struct stat st;
	size_t len;

	s = open_rw(fx);
	assert_string_equal(store_root(s), fx->root);
	path_of(fx, "tmp", path, sizeof path);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0750);
	path_of(fx, "messages", path, sizeof path);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0750);
	path_of(fx, "index.sqlite", path, sizeof path);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	path_of(fx, "lock", path, sizeof path);
	assert_non_null(lock = read_file(path, &len));
	snprintf(want, sizeof want, "%ld\n", (long)getpid());
	assert_string_equal(lock, want);
	free(lock);
	store_close(s);
	assert_int_equal(sql_int(fx, "PRAGMA user_version"), 3);
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM sqlite_master "
	    "WHERE name = 'pop3_seen'"), 1);
	/* Opening again finds the schema current and changes nothing. */
	s = open_rw(fx);
	store_close(s);
	assert_int_equal(sql_int(fx, "PRAGMA user_version"), 3);
}

static void
test_open_missing_parent(void **state)
{
	struct fx *fx = *state;
	struct store *s = NULL;
	char root[256];

	snprintf(root, sizeof root, "%s/no/such/archive", fx->dir);
	assert_int_equal(store_open(root, STORE_RDWR, &s, fx->err,
	    sizeof fx->err), -ENOENT);
	assert_null(s);
	assert_non_null(strstr(fx->err, "parent directory does not exist"));
	assert_int_equal(store_open(fx->root, STORE_RDONLY, &s, fx->err,
	    sizeof fx->err), -ENOENT);
	assert_non_null(strstr(fx->err, "no archive at"));
}

static void
test_lock_busy(void **state)
{
	struct fx *fx = *state;
	struct store *s1, *s2 = NULL;
	char want[512];

	s1 = open_rw(fx);
	assert_int_equal(store_open(fx->root, STORE_RDWR, &s2, fx->err,
	    sizeof fx->err), -EBUSY);
	assert_null(s2);
	snprintf(want, sizeof want, "archive %s is in use by another mailstow "
	    "process (pid %ld)", fx->root, (long)getpid());
	assert_string_equal(fx->err, want);
	store_close(s1);
	s2 = open_rw(fx);
	store_close(s2);
}

static void
test_sweep_tmp(void **state)
{
	struct fx *fx = *state;
	struct store *s;
	char path[256];
	int i, fd;

	store_close(open_rw(fx));
	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/tmp/leftover-%d", fx->root, i);
		assert_true((fd = open(path, O_WRONLY | O_CREAT, 0600)) >= 0);
		assert_int_equal(write(fd, "x", 1), 1);
		close(fd);
	}
	assert_int_equal(count_files(fx, "tmp"), 3);
	s = open_rw(fx);
	assert_int_equal(count_files(fx, "tmp"), 0);
	store_close(s);
}

static void
test_interrupted_runs(void **state)
{
	struct fx *fx = *state;
	struct store *s;
	int64_t run;

	s = open_rw(fx);
	assert_int_equal(store_run_begin(s, "alice", "manual", &run), 0);
	store_close(s);	/* as if the process died mid-run */
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM runs WHERE "
	    "status = 'running' AND finished IS NULL"), 1);
	s = open_rw(fx);
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM runs WHERE "
	    "status = 'interrupted' AND finished >= started"), 1);
	store_close(s);
}

/* ---- blobs ------------------------------------------------------------ */

static void
test_blob_hash_and_header(void **state)
{
	struct fx *fx = *state;
	const char *crlf = "Subject: hi\r\nFrom: a@b\r\n\r\nbody\r\n\r\nmore\r\n";
	struct store *s;
	struct store_blob *b;
	char hex[65];
	const char *h;
	size_t len, i;

	s = open_rw(fx);
	assert_int_equal(store_blob_begin(s, &b), 0);
	assert_null(store_blob_hex(b));
	/* A byte at a time: header end found across writes. */
	for (i = 0; crlf[i] != '\0'; i++)
		assert_int_equal(store_blob_write(b, crlf + i, 1), 0);
	assert_int_equal(tmp_files(fx, s), 1);
	assert_int_equal(store_blob_end(b), 0);
	sha256_hex(crlf, strlen(crlf), hex);
	assert_string_equal(store_blob_hex(b), hex);
	assert_int_equal(store_blob_size(b), strlen(crlf));
	h = store_blob_header(b, &len);
	assert_int_equal(len, strlen("Subject: hi\r\nFrom: a@b\r\n\r\n"));
	assert_memory_equal(h, "Subject: hi\r\nFrom: a@b\r\n\r\n", len);
	assert_int_equal(store_blob_write(b, "x", 1), -EINVAL);
	assert_int_equal(store_blob_end(b), -EINVAL);
	store_blob_free(b);
	assert_int_equal(tmp_files(fx, s), 0);

	b = make_blob(s, "A: 1\n\nbody\n");
	h = store_blob_header(b, &len);
	assert_int_equal(len, 6);
	assert_memory_equal(h, "A: 1\n\n", 6);
	store_blob_free(b);
	store_blob_free(NULL);
	store_close(s);
}

static void
test_blob_header_cap(void **state)
{
	struct fx *fx = *state;
	struct store *s;
	struct store_blob *b;
	char chunk[1000];
	size_t len, i;

	memset(chunk, 'x', sizeof chunk);
	s = open_rw(fx);
	assert_int_equal(store_blob_begin(s, &b), 0);
	for (i = 0; i < 100; i++)
		assert_int_equal(store_blob_write(b, chunk, sizeof chunk), 0);
	assert_int_equal(store_blob_end(b), 0);
	store_blob_header(b, &len);
	assert_int_equal(len, 64 * 1024);
	assert_int_equal(store_blob_size(b), 100 * sizeof chunk);
	store_blob_free(b);
	store_close(s);
}

static void
test_message_path(void **state)
{
	struct fx *fx = *state;
	struct store *s;
	char hex[65], buf[512], want[512];

	s = open_rw(fx);
	sha256_hex("", 0, hex);
	assert_int_equal(store_message_path(s, hex, buf, sizeof buf), 0);
	snprintf(want, sizeof want, "%s/messages/e3/%s", fx->root, hex);
	assert_string_equal(buf, want);
	assert_int_equal(store_message_path(s, hex, buf, 20), -ERANGE);
	assert_int_equal(store_message_path(s, "e3b0", buf, sizeof buf),
	    -EINVAL);
	hex[5] = 'G';
	assert_int_equal(store_message_path(s, hex, buf, sizeof buf), -EINVAL);
	store_close(s);
}

/* ---- commit ----------------------------------------------------------- */

static void
test_commit_dedup(void **state)
{
	struct fx *fx = *state;
	const char *x = "Subject: x\r\n\r\nsame bytes\r\n";
	struct store *s;
	struct store_msg m[4];
	char hex[65], path[512];
	struct stat st;

	s = open_rw(fx);
	m[0] = msg(make_blob(s, x), "alice", "INBOX", 1);
	m[0].subject = "x";
	m[1] = msg(make_blob(s, x), "alice", "Archive", 7);
	m[2] = msg(make_blob(s, x), "bob", "INBOX", 1);
	m[3] = msg(make_blob(s, "Subject: y\r\n\r\nother\r\n"), "alice",
	    "INBOX", 2);
	assert_int_equal(store_commit(s, m, 4, fx->err, sizeof fx->err), 0);
	assert_false(m[0].duplicate);
	assert_true(m[1].duplicate);	/* same user, same bytes, same batch */
	assert_false(m[2].duplicate);	/* other user */
	assert_false(m[3].duplicate);
	assert_null(m[0].blob);
	assert_int_equal(verify_no_row_without_file(fx), 2);
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM messages"), 3);
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM locations"), 4);
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM messages WHERE "
	    "archive_user = 'alice' AND subject = 'x'"), 1);
	assert_int_equal(tmp_files(fx, s), 0);
	sha256_hex(x, strlen(x), hex);
	assert_int_equal(store_message_path(s, hex, path, sizeof path), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, strlen(x));
	*strrchr(path, '/') = '\0';
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0750);

	/* Seen again at the same place: a duplicate, no new rows. */
	m[0] = msg(make_blob(s, x), "alice", "INBOX", 1);
	assert_int_equal(store_commit(s, m, 1, fx->err, sizeof fx->err), 0);
	assert_true(m[0].duplicate);
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM locations"), 4);
	assert_int_equal(tmp_files(fx, s), 0);
	assert_int_equal(store_commit(s, m, 0, fx->err, sizeof fx->err), 0);
	store_close(s);
}

static void
test_commit_rejects_bad_input(void **state)
{
	struct fx *fx = *state;
	struct store *s;
	struct store_blob *b;
	struct store_msg m[2];

	s = open_rw(fx);
	assert_int_equal(store_blob_begin(s, &b), 0);	/* not ended */
	m[0] = msg(make_blob(s, "a"), "alice", "INBOX", 1);
	m[1] = msg(b, "alice", "INBOX", 2);
	assert_int_equal(store_commit(s, m, 2, fx->err, sizeof fx->err),
	    -EINVAL);
	assert_non_null(strstr(fx->err, "message 1"));
	assert_int_equal(tmp_files(fx, s), 0);	/* both consumed */
	m[0] = msg(make_blob(s, "a"), NULL, "INBOX", 1);
	assert_int_equal(store_commit(s, m, 1, fx->err, sizeof fx->err),
	    -EINVAL);
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM blobs"), 0);
	/* A run id that does not exist is refused by the foreign key. */
	m[0] = msg(make_blob(s, "a"), "alice", "INBOX", 1);
	m[0].run_id = 42;
	assert_true(store_commit(s, m, 1, fx->err, sizeof fx->err) < 0);
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM blobs"), 0);
	store_close(s);
}

struct fault {
	int	 fail_file_fsync;	/* fail every fsync of a file */
	int	 fail_dir_nth;		/* fail the nth fsync of a directory */
	int	 fail_rename;
	int	 dir_calls, file_calls, renames;
};

static int
fault_fsync(int fd, void *arg)
{
	struct fault *f = arg;
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	if (S_ISDIR(st.st_mode)) {
		if (++f->dir_calls == f->fail_dir_nth) {
			errno = EIO;
			return -1;
		}
	} else if (f->file_calls++, f->fail_file_fsync) {
		errno = EIO;
		return -1;
	}
	return fsync(fd);
}

static int
fault_renameat(int ofd, const char *o, int nfd, const char *n, void *arg)
{
	struct fault *f = arg;

	f->renames++;
	if (f->fail_rename) {
		errno = ENOSPC;
		return -1;
	}
	return renameat(ofd, o, nfd, n);
}

static void
set_fault(struct store *s, struct fault *f)
{
	struct store_fault hook = { fault_fsync, fault_renameat, f };

	store_test_set_fault(s, &hook);
}

/* The fault made the commit fail: nothing indexed, no temp left. */
static void
assert_nothing_indexed(struct fx *fx, struct store *s)
{
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM blobs"), 0);
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM messages"), 0);
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM locations"), 0);
	assert_int_equal(tmp_files(fx, s), 0);
}

/* After the fault is gone the same bytes commit and are durable. */
static void
commit_again(struct fx *fx, struct store *s, const char *data)
{
	struct store_msg m = msg(make_blob(s, data), "alice", "INBOX", 1);

	assert_int_equal(store_commit(s, &m, 1, fx->err, sizeof fx->err), 0);
	assert_false(m.duplicate);
	assert_int_equal(verify_no_row_without_file(fx), 1);
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM locations"), 1);
}

static void
test_fault_file_fsync(void **state)
{
	struct fx *fx = *state;
	const char *data = "Subject: f\r\n\r\nfsync fails\r\n";
	struct fault f = { .fail_file_fsync = 1 };
	struct store *s;
	struct store_msg m;
	char hex[65], path[512];

	s = open_rw(fx);
	set_fault(s, &f);
	m = msg(make_blob(s, data), "alice", "INBOX", 1);
	assert_int_equal(store_commit(s, &m, 1, fx->err, sizeof fx->err), -EIO);
	assert_non_null(strstr(fx->err, "cannot sync message"));
	assert_int_equal(f.renames, 0);	/* never renamed unsynced bytes */
	assert_nothing_indexed(fx, s);
	sha256_hex(data, strlen(data), hex);
	assert_int_equal(store_message_path(s, hex, path, sizeof path), 0);
	assert_int_equal(access(path, F_OK), -1);
	store_test_set_fault(s, NULL);
	commit_again(fx, s, data);
	store_close(s);
}

static void
test_fault_rename(void **state)
{
	struct fx *fx = *state;
	const char *data = "Subject: r\r\n\r\nrename fails\r\n";
	struct fault f = { .fail_rename = 1 };
	struct store *s;
	struct store_msg m;

	s = open_rw(fx);
	set_fault(s, &f);
	m = msg(make_blob(s, data), "alice", "INBOX", 1);
	assert_int_equal(store_commit(s, &m, 1, fx->err, sizeof fx->err),
	    -ENOSPC);
	assert_non_null(strstr(fx->err, "cannot move message"));
	assert_int_equal(f.renames, 1);
	assert_nothing_indexed(fx, s);
	f.fail_rename = 0;
	commit_again(fx, s, data);
	assert_int_equal(f.renames, 2);
	store_close(s);
}

/*
 * Fresh archive, one message: its messages/ab exists from the open, so
 * the one directory fsync is of messages/ab after the rename.  Failing it
 * leaves the file in place but unsynced: no row may exist, and the retry,
 * finding the file, must sync that directory before indexing (and need
 * not sync the bytes again: they were synced before the rename).
 */
static void
test_fault_dir_fsync(void **state)
{
	struct fx *fx = *state;
	const char *data = "Subject: d\r\n\r\ndir fsync fails\r\n";
	struct fault f = { .fail_dir_nth = 1 };
	struct store *s;
	struct store_msg m;

	s = open_rw(fx);
	set_fault(s, &f);
	m = msg(make_blob(s, data), "alice", "INBOX", 1);
	assert_int_equal(store_commit(s, &m, 1, fx->err, sizeof fx->err), -EIO);
	assert_non_null(strstr(fx->err, "cannot sync"));
	assert_int_equal(f.dir_calls, 1);
	assert_int_equal(f.file_calls, 1);
	assert_int_equal(f.renames, 1);
	assert_nothing_indexed(fx, s);
	f.fail_dir_nth = 0;
	f.dir_calls = f.file_calls = 0;
	commit_again(fx, s, data);
	assert_int_equal(f.dir_calls, 1);
	assert_int_equal(f.file_calls, 0);
	assert_int_equal(f.renames, 1);
	store_close(s);
}

/*
 * A fan-out directory that went missing after the open is made again by
 * the commit; if the entry of the new directory cannot be synced it is
 * removed again, so that the next commit makes and syncs it anew.
 */
static void
test_fault_mkdir_sync(void **state)
{
	struct fx *fx = *state;
	const char *data = "Subject: m\r\n\r\nparent fsync fails\r\n";
	struct fault f = { .fail_dir_nth = 1 };
	struct store *s;
	struct store_msg m;
	char hex[65], path[512];

	s = open_rw(fx);
	sha256_hex(data, strlen(data), hex);
	snprintf(path, sizeof path, "%s/messages/%.2s", fx->root, hex);
	assert_int_equal(rmdir(path), 0);
	set_fault(s, &f);
	m = msg(make_blob(s, data), "alice", "INBOX", 1);
	assert_int_equal(store_commit(s, &m, 1, fx->err, sizeof fx->err), -EIO);
	assert_non_null(strstr(fx->err, "cannot create"));
	assert_int_equal(f.renames, 1);		/* ENOENT, then no retry */
	assert_nothing_indexed(fx, s);
	assert_int_equal(access(path, F_OK), -1);
	f.fail_dir_nth = 0;
	f.dir_calls = f.renames = 0;
	commit_again(fx, s, data);
	assert_int_equal(f.dir_calls, 2);	/* messages/, messages/ab */
	assert_int_equal(f.renames, 2);
	store_close(s);
}

/* ---- incremental state ------------------------------------------------ */

static void
test_known_uids(void **state)
{
	struct fx *fx = *state;
	const uint32_t uids[] = { 5, 3, 9 };
	struct store *s;
	struct store_msg m[4];
	uint32_t *v;
	size_t n, i;
	char body[32];

	s = open_rw(fx);
	for (i = 0; i < 3; i++) {
		snprintf(body, sizeof body, "message %u", uids[i]);
		m[i] = msg(make_blob(s, body), "alice", "INBOX", uids[i]);
	}
	m[3] = msg(make_blob(s, "other validity"), "alice", "INBOX", 4);
	m[3].uidvalidity = 200;
	assert_int_equal(store_commit(s, m, 4, fx->err, sizeof fx->err), 0);
	assert_int_equal(store_known_uids(s, "alice", "alice", "INBOX", 100,
	    &v, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(v[0], 3);
	assert_int_equal(v[1], 5);
	assert_int_equal(v[2], 9);
	free(v);
	assert_int_equal(store_known_uids(s, "alice", "alice", "INBOX", 200,
	    &v, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(v[0], 4);
	free(v);
	assert_int_equal(store_known_uids(s, "alice", "alice", "Sent", 100,
	    &v, &n), 0);
	assert_int_equal(n, 0);
	assert_null(v);
	store_close(s);
}

static void
test_folder_state(void **state)
{
	struct fx *fx = *state;
	struct store_folder_state in = { 7, 101, 100, 1ULL << 62 }, out;
	struct store *s;

	s = open_rw(fx);
	assert_int_equal(store_folder_state_get(s, "p", "m", "INBOX", &out),
	    -ENOENT);
	assert_int_equal(store_folder_state_set(s, "p", "m", "INBOX", &in), 0);
	memset(&out, 0, sizeof out);
	assert_int_equal(store_folder_state_get(s, "p", "m", "INBOX", &out), 0);
	assert_int_equal(out.uidvalidity, 7);
	assert_int_equal(out.uidnext, 101);
	assert_int_equal(out.messages, 100);
	assert_true(out.highestmodseq == 1ULL << 62);
	in.uidnext = UINT32_MAX;
	assert_int_equal(store_folder_state_set(s, "p", "m", "INBOX", &in), 0);
	assert_int_equal(store_folder_state_get(s, "p", "m", "INBOX", &out), 0);
	assert_true(out.uidnext == UINT32_MAX);
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM folder_state"), 1);
	store_close(s);
}
int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, store_fx_setup, \
    store_fx_teardown)
		T(test_open_layout),
		T(test_open_missing_parent),
		T(test_lock_busy),
		T(test_sweep_tmp),
		T(test_interrupted_runs),
		T(test_blob_hash_and_header),
		T(test_blob_header_cap),
		T(test_message_path),
		T(test_commit_dedup),
		T(test_commit_rejects_bad_input),
		T(test_fault_file_fsync),
		T(test_fault_rename),
		T(test_fault_dir_fsync),
		T(test_fault_mkdir_sync),
		T(test_known_uids),
		T(test_folder_state),
#undef T
	};

	umask(022);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
