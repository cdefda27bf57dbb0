/*
 * test_store_layout.c - where message files live: the 256 fan-out
 * directories of a new archive, the fsyncs a commit group costs (one per
 * new file, one per distinct directory), and the move of an archive in the
 * old messages/ab/cd/ layout: read in both places before, byte-identical
 * after, and a move cut short by a failing rename or fsync that the next
 * open finishes.
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

#define STORE_FX_CUSTOM		/* its struct fx holds the messages too */
#define STORE_FX_TAG		"layout"
#include "store_fixture.h"

#define NMSG	40

struct fx {
	char	 dir[64];
	char	 root[128];
	char	 err[512];
	char	*data[NMSG + 1];	/* the last: an old file without a row */
	size_t	 len[NMSG + 1];
	char	 hex[NMSG + 1][65];
};

/* Messages of varied sizes with every byte value; one of 300 KB. */
static void
make_data(struct fx *fx)
{
	size_t i, j;

	for (i = 0; i <= NMSG; i++) {
		fx->len[i] = i == 7 ? 300 * 1024 : 100 + i * 37;
		assert_non_null(fx->data[i] = malloc(fx->len[i]));
		j = (size_t)snprintf(fx->data[i], fx->len[i],
		    "Subject: m%zu\r\n\r\n", i);
		for (; j < fx->len[i]; j++)
			fx->data[i][j] = (char)((j * 131 + i) & 0xff);
		sha256_hex(fx->data[i], fx->len[i], fx->hex[i]);
	}
}

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof *fx);

	assert_non_null(fx);
	store_fx_mkroot(fx->dir, sizeof fx->dir, fx->root, sizeof fx->root);
	make_data(fx);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;
	size_t i;

	store_fx_rmtree(fx->dir);
	for (i = 0; i <= NMSG; i++)
		free(fx->data[i]);
	free(fx);
	return 0;
}

struct fault {
	int	 fail_rename_nth;	/* 0: none */
	int	 fail_dir_nth;
	int	 dir_calls, file_calls, renames;
};

static int
fault_fsync(int fd, void *arg)
{
	struct fault *f = arg;
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	if (!S_ISDIR(st.st_mode))
		f->file_calls++;
	else if (++f->dir_calls == f->fail_dir_nth) {
		errno = EIO;
		return -1;
	}
	return fsync(fd);
}

static int
fault_renameat(int ofd, const char *o, int nfd, const char *n, void *arg)
{
	struct fault *f = arg;

	if (++f->renames == f->fail_rename_nth) {
		errno = ENOSPC;
		return -1;
	}
	return renameat(ofd, o, nfd, n);
}

static struct store *
open_fault(struct fx *fx, enum store_open_flags flags, struct fault *f)
{
	struct store_fault hook = { fault_fsync, fault_renameat, f };
	struct store *s = NULL;

	assert_int_equal(store_test_open(fx->root, flags, f != NULL ? &hook :
	    NULL, &s, fx->err, sizeof fx->err), 0);
	return s;
}

static int64_t
sql_int(struct fx *fx, const char *sql)
{
	char path[256];
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v;

	snprintf(path, sizeof path, "%s/index.sqlite", fx->root);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void
sql_exec(struct fx *fx, const char *sql)
{
	char path[256];
	sqlite3 *db;

	snprintf(path, sizeof path, "%s/index.sqlite", fx->root);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE,
	    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static struct store_blob *
make_blob(struct store *s, const char *data, size_t len)
{
	struct store_blob *b;

	assert_int_equal(store_blob_begin(s, &b), 0);
	assert_int_equal(store_blob_write(b, data, len / 3), 0);
	assert_int_equal(store_blob_write(b, data + len / 3, len - len / 3), 0);
	assert_int_equal(store_blob_end(b), 0);
	return b;
}

static struct store_msg
msg(struct store_blob *b, const char *user, uint32_t uid)
{
	struct store_msg m = {
		.blob = b, .archive_user = user, .profile = "p",
		.mailbox = "mb", .folder = "INBOX", .uidvalidity = 1, .uid = uid,
	};
	return m;
}

/* Commit data[from..to) for `user` in one group. */
static void
commit_range(struct fx *fx, struct store *s, const char *user, size_t from,
    size_t to)
{
	struct store_msg m[NMSG];
	size_t i;

	for (i = from; i < to; i++)
		m[i - from] = msg(make_blob(s, fx->data[i], fx->len[i]), user,
		    (uint32_t)i + 1);
	assert_int_equal(store_commit(s, m, to - from, fx->err,
	    sizeof fx->err), 0);
	for (i = 0; i < to - from; i++)
		assert_false(m[i].duplicate);
}

static void
new_path(struct fx *fx, size_t i, char *buf, size_t len)
{
	snprintf(buf, len, "%s/messages/%.2s/%s", fx->root, fx->hex[i],
	    fx->hex[i]);
}

static void
old_path(struct fx *fx, size_t i, char *buf, size_t len)
{
	snprintf(buf, len, "%s/messages/%.2s/%.2s/%s", fx->root, fx->hex[i],
	    fx->hex[i] + 2, fx->hex[i]);
}

/* 1: only in the new place, 2: only in the old, 3: both, 0: none. */
static int
where(struct fx *fx, size_t i)
{
	char p[512];
	int w = 0;

	new_path(fx, i, p, sizeof p);
	if (access(p, F_OK) == 0)
		w |= 1;
	old_path(fx, i, p, sizeof p);
	if (access(p, F_OK) == 0)
		w |= 2;
	return w;
}

/* The bytes at `path` are data[i], exactly. */
static void
assert_bytes(struct fx *fx, const char *path, size_t i)
{
	char *buf;
	ssize_t n;
	int fd;

	assert_non_null(buf = malloc(fx->len[i] + 1));
	assert_true((fd = open(path, O_RDONLY)) >= 0);
	n = read(fd, buf, fx->len[i] + 1);
	close(fd);
	assert_int_equal(n, (ssize_t)fx->len[i]);
	assert_memory_equal(buf, fx->data[i], fx->len[i]);
	free(buf);
}

/* Every message (and the orphan when `orphan`) read back through the
 * store's own path lookup: found, and the same bytes. */
static void
assert_readable(struct fx *fx, struct store *s, bool orphan)
{
	char path[512];
	size_t i;

	for (i = 0; i < NMSG + (orphan ? 1 : 0); i++) {
		assert_int_equal(store_message_path(s, fx->hex[i], path,
		    sizeof path), 0);
		assert_bytes(fx, path, i);
	}
}

/* Directories inside messages/ab: the new layout has none. */
static int
count_subdirs(struct fx *fx)
{
	char path[256];
	struct dirent *de;
	int i, n = 0;
	DIR *d;

	for (i = 0; i < STORE_FANOUT; i++) {
		snprintf(path, sizeof path, "%s/messages/%02x", fx->root, i);
		assert_non_null(d = opendir(path));
		while ((de = readdir(d)) != NULL)
			if (de->d_type == DT_DIR && de->d_name[0] != '.')
				n++;
		closedir(d);
	}
	return n;
}

/*
 * An archive as the code before schema 3 left it: index of schema 2 (no
 * meta table), files at messages/ab/cd/<sha256>, only the directories
 * that hold files, and one old file whose row never came (a crash).
 * Written by this code, then taken back: schema 3 only added meta.
 */
static void
make_old_archive(struct fx *fx)
{
	char path[512], to[512];
	struct store *s;
	size_t i;
	int fd;

	s = open_fault(fx, STORE_RDWR, NULL);
	commit_range(fx, s, "alice", 0, NMSG);
	store_close(s);
	sql_exec(fx, "DROP TABLE meta; PRAGMA user_version = 2;");
	for (i = 0; i < NMSG; i++) {
		new_path(fx, i, path, sizeof path);
		old_path(fx, i, to, sizeof to);
		*strrchr(to, '/') = '\0';
		mkdir(to, 0750);
		old_path(fx, i, to, sizeof to);
		assert_int_equal(rename(path, to), 0);
	}
	old_path(fx, NMSG, to, sizeof to);
	*strrchr(to, '/') = '\0';
	snprintf(path, sizeof path, "%.*s", (int)(strrchr(to, '/') - to), to);
	mkdir(path, 0750);
	mkdir(to, 0750);
	old_path(fx, NMSG, to, sizeof to);
	assert_true((fd = open(to, O_WRONLY | O_CREAT | O_EXCL, 0640)) >= 0);
	assert_int_equal(write(fd, fx->data[NMSG], fx->len[NMSG]),
	    (ssize_t)fx->len[NMSG]);
	close(fd);
	for (i = 0; i < STORE_FANOUT; i++) {
		snprintf(path, sizeof path, "%s/messages/%02zx", fx->root, i);
		(void)rmdir(path);	/* the empty ones */
	}
	for (i = 0; i <= NMSG; i++)
		assert_int_equal(where(fx, i), 2);
}

/* ---- a new archive ----------------------------------------------------- */

static void
test_new_archive_fanout(void **state)
{
	struct fx *fx = *state;
	char path[256];
	struct stat st;
	struct store *s;
	int i;

	s = open_fault(fx, STORE_RDWR, NULL);
	for (i = 0; i < STORE_FANOUT; i++) {
		snprintf(path, sizeof path, "%s/messages/%02x", fx->root, i);
		assert_int_equal(stat(path, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
		assert_int_equal(st.st_mode & 07777, 0750);
	}
	store_close(s);
	assert_int_equal(sql_int(fx, "PRAGMA user_version"), 3);
	assert_int_equal(sql_int(fx, "SELECT value FROM meta WHERE key = "
	    "'layout'"), 2);
	/* Open again: nothing to make, nothing to move. */
	s = open_fault(fx, STORE_RDWR, NULL);
	store_close(s);
	assert_int_equal(sql_int(fx, "SELECT value FROM meta WHERE key = "
	    "'layout'"), 2);
}

/*
 * A group of N new messages costs N file fsyncs and one fsync per
 * distinct messages/ab, and no mkdir; a message already in place costs
 * no file fsync, and two copies of new bytes in one group cost one.
 */
static void
test_group_fsyncs(void **state)
{
	struct fx *fx = *state;
	struct fault f = { 0 };
	bool seen[256] = { false };
	struct store_msg m[2];
	struct store *s;
	char path[512];
	size_t i;
	int distinct = 0;

	s = open_fault(fx, STORE_RDWR, &f);
	memset(&f, 0, sizeof f);	/* the open made 256 directories */
	commit_range(fx, s, "alice", 0, NMSG);
	for (i = 0; i < NMSG; i++) {
		char two[3] = { fx->hex[i][0], fx->hex[i][1], '\0' };
		unsigned long b = strtoul(two, NULL, 16);

		if (!seen[b]) {
			seen[b] = true;
			distinct++;
		}
		assert_int_equal(where(fx, i), 1);
		new_path(fx, i, path, sizeof path);
		assert_bytes(fx, path, i);
	}
	assert_true(distinct < NMSG);	/* some share a directory */
	assert_int_equal(f.file_calls, NMSG);
	assert_int_equal(f.dir_calls, distinct);
	assert_int_equal(f.renames, NMSG);
	assert_int_equal(count_subdirs(fx), 0);

	/* In place already (another user's copy): no file fsync. */
	memset(&f, 0, sizeof f);
	m[0] = msg(make_blob(s, fx->data[3], fx->len[3]), "bob", 1);
	assert_int_equal(store_commit(s, m, 1, fx->err, sizeof fx->err), 0);
	assert_false(m[0].duplicate);
	assert_int_equal(f.file_calls, 0);
	assert_int_equal(f.renames, 0);
	assert_int_equal(f.dir_calls, 1);

	/* The same new bytes twice in one group: one fsync, one rename. */
	memset(&f, 0, sizeof f);
	m[0] = msg(make_blob(s, fx->data[NMSG], fx->len[NMSG]), "alice", 100);
	m[1] = msg(make_blob(s, fx->data[NMSG], fx->len[NMSG]), "alice", 101);
	assert_int_equal(store_commit(s, m, 2, fx->err, sizeof fx->err), 0);
	assert_false(m[0].duplicate);
	assert_true(m[1].duplicate);
	assert_int_equal(f.file_calls, 1);
	assert_int_equal(f.renames, 1);
	assert_int_equal(f.dir_calls, 1);
	assert_int_equal(where(fx, NMSG), 1);
	store_close(s);
	snprintf(path, sizeof path, "%s/tmp", fx->root);
	assert_int_equal(rmdir(path), 0);	/* no temp file left */
}

/* ---- an archive in the old layout --------------------------------------- */

static void
test_old_archive_migrated(void **state)
{
	struct fx *fx = *state;
	struct store *s;
	struct store_msg m;
	struct fault f = { 0 };
	char path[512];
	size_t i;

	make_old_archive(fx);
	/* A reader before the owner's open finds every file, old place. */
	s = open_fault(fx, STORE_RDONLY, NULL);
	assert_readable(fx, s, true);
	assert_int_equal(store_message_path(s, fx->hex[0], path, sizeof path),
	    0);
	assert_non_null(strstr(path, "/messages/"));
	assert_int_equal(strlen(strstr(path, "/messages/")),
	    strlen("/messages/ab/cd/") + 64);
	store_close(s);

	s = open_fault(fx, STORE_RDWR, NULL);
	assert_readable(fx, s, true);
	store_close(s);
	for (i = 0; i <= NMSG; i++) {
		assert_int_equal(where(fx, i), 1);
		new_path(fx, i, path, sizeof path);
		assert_bytes(fx, path, i);
	}
	assert_int_equal(count_subdirs(fx), 0);
	assert_int_equal(sql_int(fx, "PRAGMA user_version"), 3);
	assert_int_equal(sql_int(fx, "SELECT value FROM meta WHERE key = "
	    "'layout'"), 2);
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM messages"), NMSG);

	/* The index still knows them: the same bytes are a duplicate, and
	 * their file is found in place. */
	s = open_fault(fx, STORE_RDWR, &f);
	memset(&f, 0, sizeof f);
	m = msg(make_blob(s, fx->data[5], fx->len[5]), "alice", 6);
	assert_int_equal(store_commit(s, &m, 1, fx->err, sizeof fx->err), 0);
	assert_true(m.duplicate);
	assert_int_equal(f.file_calls, 0);
	assert_int_equal(f.renames, 0);
	store_close(s);
	s = open_fault(fx, STORE_RDONLY, NULL);
	assert_readable(fx, s, true);
	store_close(s);
}

/* Files in each place and the layout still 1. */
static void
assert_half_moved(struct fx *fx)
{
	size_t i;
	int at[4] = { 0 };

	for (i = 0; i <= NMSG; i++)
		at[where(fx, i)]++;
	assert_int_equal(at[0], 0);
	assert_int_equal(at[3], 0);
	assert_true(at[1] > 0 && at[2] > 0);
	assert_int_equal(sql_int(fx, "SELECT value FROM meta WHERE key = "
	    "'layout'"), 1);
}

/*
 * The move cut short (a rename fails half-way, as a crash would stop
 * it): files in both places, readers find each, the next open finishes.
 * A failing directory sync after every rename must not record the move
 * done either.
 */
static void
test_migration_cut_short(void **state)
{
	struct fx *fx = *state;
	struct fault f = { .fail_rename_nth = NMSG / 2 };
	struct store_fault hook = { fault_fsync, fault_renameat, &f };
	struct store *s;
	char path[512], copy[512];
	size_t i;

	make_old_archive(fx);
	assert_int_equal(store_test_open(fx->root, STORE_RDWR, &hook, &s,
	    fx->err, sizeof fx->err), -ENOSPC);
	assert_non_null(strstr(fx->err, "to the new layout"));
	assert_half_moved(fx);
	s = open_fault(fx, STORE_RDONLY, NULL);
	assert_readable(fx, s, true);
	store_close(s);

	/* Every file moves this time, but the directory syncs fail. */
	memset(&f, 0, sizeof f);
	f.fail_dir_nth = 1;
	assert_int_equal(store_test_open(fx->root, STORE_RDWR, &hook, &s,
	    fx->err, sizeof fx->err), -EIO);
	assert_non_null(strstr(fx->err, "cannot sync"));
	assert_int_equal(sql_int(fx, "SELECT value FROM meta WHERE key = "
	    "'layout'"), 1);
	for (i = 0; i <= NMSG; i++)
		assert_int_equal(where(fx, i), 1);

	/* A stale second copy in the old place (same bytes) is folded in. */
	new_path(fx, 2, path, sizeof path);
	old_path(fx, 2, copy, sizeof copy);
	*strrchr(copy, '/') = '\0';
	mkdir(copy, 0750);
	old_path(fx, 2, copy, sizeof copy);
	assert_int_equal(link(path, copy), 0);

	s = open_fault(fx, STORE_RDWR, NULL);
	store_close(s);
	for (i = 0; i <= NMSG; i++) {
		assert_int_equal(where(fx, i), 1);
		new_path(fx, i, path, sizeof path);
		assert_bytes(fx, path, i);
	}
	assert_int_equal(count_subdirs(fx), 0);
	assert_int_equal(sql_int(fx, "SELECT value FROM meta WHERE key = "
	    "'layout'"), 2);
}

/* What is not a message file of its directory is left where it is. */
static void
test_migration_leaves_strangers(void **state)
{
	struct fx *fx = *state;
	char dir[512], path[600];
	struct store *s;
	struct stat st;
	int fd;

	make_old_archive(fx);
	old_path(fx, 0, dir, sizeof dir);
	*strrchr(dir, '/') = '\0';
	snprintf(path, sizeof path, "%s/notes.txt", dir);
	assert_true((fd = open(path, O_WRONLY | O_CREAT, 0640)) >= 0);
	close(fd);
	/* A message name that belongs to another directory. */
	snprintf(path, sizeof path, "%s/%s", dir, fx->hex[0][0] == 'f' ?
	    "0000000000000000000000000000000000000000000000000000000000000000" :
	    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff");
	assert_true((fd = open(path, O_WRONLY | O_CREAT, 0640)) >= 0);
	close(fd);
	s = open_fault(fx, STORE_RDWR, NULL);
	assert_readable(fx, s, true);
	store_close(s);
	assert_int_equal(stat(path, &st), 0);
	snprintf(path, sizeof path, "%s/notes.txt", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(count_subdirs(fx), 1);
	assert_int_equal(where(fx, 0), 1);
	assert_int_equal(sql_int(fx, "SELECT value FROM meta WHERE key = "
	    "'layout'"), 2);
}

/* A layout this code does not know is refused, not guessed at. */
static void
test_unknown_layout_refused(void **state)
{
	struct fx *fx = *state;
	struct store *s;

	s = open_fault(fx, STORE_RDWR, NULL);
	store_close(s);
	sql_exec(fx, "UPDATE meta SET value = 9 WHERE key = 'layout'");
	assert_int_equal(store_open(fx->root, STORE_RDONLY, &s, fx->err,
	    sizeof fx->err), -ENOTSUP);
	assert_non_null(strstr(fx->err, "layout 9"));
	assert_int_equal(store_open(fx->root, STORE_RDWR, &s, fx->err,
	    sizeof fx->err), -ENOTSUP);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_new_archive_fanout, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_group_fsyncs, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_old_archive_migrated,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_migration_cut_short, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_migration_leaves_strangers,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_layout_refused,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
