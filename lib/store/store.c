/*
 * store.c - opening and closing an archive: its top directories, the
 * exclusive lock that makes one process the only writer, the sweep of
 * temp files left by killed processes, schema migrations by
 * PRAGMA user_version, and the small SQLite helpers the other files share.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "store_private.h"

#define STORE_SCHEMA_VERSION	3

/*
 * migrations[i] brings the schema from version i to i + 1 and sets
 * user_version itself, so a migration and its version bump commit together.
 * Times are unix seconds.  Key columns are NOT NULL because a UNIQUE
 * constraint does not deduplicate rows that hold a NULL.
 */
static const char *const store_migrations[] = {
	"CREATE TABLE blobs ("
	"  hash TEXT PRIMARY KEY NOT NULL,"
	"  size INTEGER NOT NULL);"
	"CREATE TABLE runs ("
	"  id INTEGER PRIMARY KEY,"
	"  profile TEXT NOT NULL, trigger TEXT NOT NULL,"
	"  started INTEGER NOT NULL, finished INTEGER,"
	"  status TEXT NOT NULL,"
	"  found INTEGER NOT NULL DEFAULT 0, archived INTEGER NOT NULL DEFAULT 0,"
	"  skipped INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,"
	"  bytes INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX runs_profile ON runs(profile, id);"
	"CREATE TABLE messages ("
	"  id INTEGER PRIMARY KEY,"
	"  archive_user TEXT NOT NULL,"
	"  hash TEXT NOT NULL REFERENCES blobs(hash),"
	"  message_id TEXT, date TEXT, from_ TEXT, to_ TEXT, subject TEXT,"
	"  size INTEGER NOT NULL, internaldate INTEGER,"
	"  first_run INTEGER REFERENCES runs(id),"
	"  UNIQUE(archive_user, hash));"
	"CREATE TABLE locations ("
	"  message INTEGER NOT NULL REFERENCES messages(id),"
	"  profile TEXT NOT NULL, mailbox TEXT NOT NULL, folder TEXT NOT NULL,"
	"  uidvalidity INTEGER NOT NULL, uid INTEGER NOT NULL,"
	"  run INTEGER REFERENCES runs(id),"
	"  UNIQUE(profile, mailbox, folder, uidvalidity, uid, message));"
	"CREATE INDEX locations_message ON locations(message);"
	"CREATE TABLE folder_state ("
	"  profile TEXT NOT NULL, mailbox TEXT NOT NULL, folder TEXT NOT NULL,"
	"  uidvalidity INTEGER NOT NULL, uidnext INTEGER NOT NULL,"
	"  messages INTEGER NOT NULL, highestmodseq INTEGER NOT NULL,"
	"  PRIMARY KEY(profile, mailbox, folder));"
	"CREATE TABLE run_folders ("
	"  run INTEGER NOT NULL REFERENCES runs(id),"
	"  mailbox TEXT NOT NULL, folder TEXT NOT NULL,"
	"  found INTEGER NOT NULL, archived INTEGER NOT NULL,"
	"  skipped INTEGER NOT NULL, failed INTEGER NOT NULL,"
	"  bytes INTEGER NOT NULL,"
	"  PRIMARY KEY(run, mailbox, folder));"
	"CREATE TABLE run_events ("
	"  id INTEGER PRIMARY KEY,"
	"  run INTEGER NOT NULL REFERENCES runs(id),"
	"  time INTEGER NOT NULL, level TEXT NOT NULL,"
	"  mailbox TEXT, folder TEXT, uid INTEGER, text TEXT NOT NULL);"
	"CREATE INDEX run_events_run ON run_events(run, id);"
	"CREATE TABLE pop3_seen ("
	"  profile TEXT NOT NULL, mailbox TEXT NOT NULL, uidl TEXT NOT NULL,"
	"  hash TEXT NOT NULL REFERENCES blobs(hash),"
	"  PRIMARY KEY(profile, mailbox, uidl));"
	"PRAGMA user_version = 1;",
	/* 2: messages a multidrop profile skipped (nobody to file them for)
	 * are remembered, so they are not fetched again every run. */
	"CREATE TABLE skipped ("
	"  profile TEXT NOT NULL, mailbox TEXT NOT NULL, folder TEXT NOT NULL,"
	"  uidvalidity INTEGER NOT NULL, uid INTEGER NOT NULL,"
	"  uidl TEXT NOT NULL, run INTEGER REFERENCES runs(id),"
	"  UNIQUE(profile, mailbox, folder, uidvalidity, uid, uidl));"
	"PRAGMA user_version = 2;",
	/* 3: facts about the archive itself.  'layout' says where message
	 * files live; an archive from before has them at messages/ab/cd/
	 * and store_layout_open() moves them, then records layout 2.  A new
	 * archive is set to 2 by store_migrate() in the same transaction. */
	"CREATE TABLE meta ("
	"  key TEXT PRIMARY KEY NOT NULL,"
	"  value NOT NULL);"
	"INSERT INTO meta(key, value) VALUES('layout', 1);"
	"PRAGMA user_version = 3;",
};
_Static_assert(sizeof store_migrations / sizeof *store_migrations ==
    STORE_SCHEMA_VERSION, "one migration per schema version");

int
store_seterr(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

int
store_sqlite_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_CANTOPEN:
	case SQLITE_NOTFOUND:
		return -ENOENT;
	case SQLITE_CONSTRAINT:
	case SQLITE_MISMATCH:
	case SQLITE_RANGE:
		return -EINVAL;
	case SQLITE_TOOBIG:
		return -E2BIG;
	default:
		return -EIO;
	}
}

int
store_prepare(struct store *s, const char *sql, sqlite3_stmt **ret)
{
	int rc;

	rc = sqlite3_prepare_v2(s->db, sql, -1, ret, NULL);
	if (rc != SQLITE_OK) {
		log_debug("store: prepare: %s", sqlite3_errmsg(s->db));
		*ret = NULL;
		return store_sqlite_errno(rc);
	}
	return 0;
}

int
store_step_done(struct store *s, sqlite3_stmt *st)
{
	int rc;

	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		log_debug("store: step: %s", sqlite3_errmsg(s->db));
		return rc == SQLITE_ROW ? -EINVAL : store_sqlite_errno(rc);
	}
	return 0;
}

int
store_exec(struct store *s, const char *sql)
{
	char *msg = NULL;
	int rc;

	rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		log_debug("store: %s: %s", sql, msg != NULL ? msg : "?");
		sqlite3_free(msg);
		return store_sqlite_errno(rc);
	}
	return 0;
}

int
store_bind_text(sqlite3_stmt *st, int idx, const char *s)
{
	int rc;

	if (s == NULL)
		rc = sqlite3_bind_null(st, idx);
	else
		rc = sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT);
	return store_sqlite_errno(rc);
}

int
store_check_writable(const struct store *s)
{
	return s->rdonly ? -EROFS : 0;
}

int64_t
store_now(void)
{
	return (int64_t)time(NULL);
}

void
store_test_set_fault(struct store *s, const struct store_fault *f)
{
	if (f == NULL)
		memset(&s->fault, 0, sizeof s->fault);
	else
		s->fault = *f;
}

int
store_fsync(struct store *s, int fd)
{
	if (s->fault.fsync != NULL)
		return s->fault.fsync(fd, s->fault.arg);
	return fsync(fd);
}

int
store_renameat(struct store *s, int ofd, const char *old, int nfd,
    const char *new)
{
	if (s->fault.renameat != NULL)
		return s->fault.renameat(ofd, old, nfd, new, s->fault.arg);
	return renameat(ofd, old, nfd, new);
}

const char *
store_root(const struct store *s)
{
	return s->root;
}

/* fsync the directory that holds `path` (after creating an entry in it). */
static int
store_fsync_parent(const char *path)
{
	char *copy, *slash;
	int fd, r = 0;

	if ((copy = strdup(path)) == NULL)
		return -ENOMEM;
	slash = strrchr(copy, '/');
	if (slash == NULL)
		strcpy(copy, ".");
	else if (slash == copy)
		slash[1] = '\0';
	else
		*slash = '\0';
	fd = open(copy, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		r = -errno;
	if (fd >= 0)
		close(fd);
	free(copy);
	return r;
}

/* mkdir `name` under dirfd and open it; fsync dirfd if it was created. */
static int
store_subdir(int dirfd, const char *name, int *ret)
{
	bool created = false;
	int fd;

	if (mkdirat(dirfd, name, STORE_DIR_MODE) == 0)
		created = true;
	else if (errno != EEXIST)
		return -errno;
	if (created && fsync(dirfd) < 0)
		return -errno;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	*ret = fd;
	return 0;
}

static int
store_make_root(struct store *s, char *err, size_t errlen)
{
	bool created = false;
	int r;

	if (mkdir(s->root, STORE_DIR_MODE) == 0)
		created = true;
	else if (errno == ENOENT)
		return store_seterr(err, errlen, -ENOENT, "cannot create archive "
		    "%s: its parent directory does not exist", s->root);
	else if (errno != EEXIST)
		return store_seterr(err, errlen, -errno, "cannot create archive "
		    "%s: %s", s->root, strerror(errno));
	if (created && (r = store_fsync_parent(s->root)) < 0)
		return store_seterr(err, errlen, r, "cannot sync the parent of "
		    "%s: %s", s->root, strerror(-r));
	s->rootfd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->rootfd < 0)
		return store_seterr(err, errlen, -errno, "cannot open archive "
		    "%s: %s", s->root, strerror(errno));
	return 0;
}

/* Who holds the lock: the pid the holder wrote, or 0 if unreadable. */
static long
store_lock_holder(int fd)
{
	char buf[32];
	ssize_t n;
	uint32_t pid;
	size_t len;

	n = pread(fd, buf, sizeof buf - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	len = strspn(buf, "0123456789");
	if (parse_u32(buf, len, &pid) < 0)
		return 0;
	return (long)pid;
}

static int
store_lock(struct store *s, char *err, size_t errlen)
{
	char pid[32];
	int n;

	s->lockfd = openat(s->rootfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW, STORE_FILE_MODE);
	if (s->lockfd < 0)
		return store_seterr(err, errlen, -errno, "cannot open %s/lock: "
		    "%s", s->root, strerror(errno));
	if (flock(s->lockfd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			return store_seterr(err, errlen, -EBUSY, "archive %s is "
			    "in use by another mailstow process (pid %ld)",
			    s->root, store_lock_holder(s->lockfd));
		return store_seterr(err, errlen, -errno, "cannot lock %s/lock: "
		    "%s", s->root, strerror(errno));
	}
	/* The pid is only a hint for the error text of the next opener. */
	n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(s->lockfd, 0) < 0 || pwrite(s->lockfd, pid, (size_t)n,
	    0) != n)
		log_debug("store: cannot write pid to %s/lock", s->root);
	return 0;
}

/*
 * Temp files in tmp/ belong to dead processes (half-written messages, and
 * the spares store_spare.c makes ahead, all "<pid>-<seq>.tmp"): we hold
 * the lock.  Every entry goes, whatever its name.
 */
static int
store_sweep(struct store *s)
{
	struct dirent *de;
	DIR *d;
	int fd, r = 0, removed = 0;

	if ((fd = dup(s->tmpfd)) < 0)
		return -errno;
	if ((d = fdopendir(fd)) == NULL) {
		r = -errno;
		close(fd);
		return r;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(s->tmpfd, de->d_name, 0) == 0)
			removed++;
		else
			log_debug("store: sweep %s/tmp/%s: %s", s->root,
			    de->d_name, strerror(errno));
	}
	closedir(d);
	if (removed > 0)
		log_debug("store: removed %d temp files in %s/tmp", removed,
		    s->root);
	return r;
}

static int
store_make_dirs(struct store *s, char *err, size_t errlen)
{
	int r;

	if ((r = store_subdir(s->rootfd, "tmp", &s->tmpfd)) < 0 ||
	    (r = store_subdir(s->rootfd, "messages", &s->msgfd)) < 0)
		return store_seterr(err, errlen, r, "cannot create directories "
		    "in %s: %s", s->root, strerror(-r));
	if ((r = store_sweep(s)) < 0)
		return store_seterr(err, errlen, r, "cannot clean %s/tmp: %s",
		    s->root, strerror(-r));
	return 0;
}

static int
store_user_version(struct store *s, int *ret)
{
	sqlite3_stmt *st;
	int r, rc;

	if ((r = store_prepare(s, "PRAGMA user_version", &st)) < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int(st, 0);
	else
		r = rc == SQLITE_DONE ? -EIO : store_sqlite_errno(rc);
	sqlite3_finalize(st);
	return r;
}

static int
store_check_version(struct store *s, int v, char *err, size_t errlen)
{
	if (v > STORE_SCHEMA_VERSION)
		return store_seterr(err, errlen, -ENOTSUP, "archive %s has "
		    "schema version %d; this mailstow knows up to %d",
		    s->root, v, STORE_SCHEMA_VERSION);
	return 0;
}

static int
store_migrate(struct store *s, char *err, size_t errlen)
{
	int r, v = 0, from;

	if ((r = store_exec(s, "BEGIN IMMEDIATE")) < 0)
		goto fail;
	if ((r = store_user_version(s, &v)) < 0)
		goto rollback;
	if ((r = store_check_version(s, v, err, errlen)) < 0) {
		store_exec(s, "ROLLBACK");
		return r;
	}
	for (from = v; v < STORE_SCHEMA_VERSION; v++)
		if ((r = store_exec(s, store_migrations[v])) < 0)
			goto rollback;
	/* A new archive has no files to move: it starts in the new layout
	 * (its fan-out directories are made right after, at every open). */
	if (from == 0 && (r = store_layout_set(s, STORE_LAYOUT_AB)) < 0)
		goto rollback;
	if ((r = store_exec(s, "COMMIT")) < 0)
		goto rollback;
	return 0;
rollback:
	store_exec(s, "ROLLBACK");
fail:
	return store_seterr(err, errlen, r, "cannot migrate %s/index.sqlite to "
	    "schema %d: %s", s->root, v + 1, sqlite3_errmsg(s->db));
}

/* Runs still "running" belong to dead processes: we hold the lock. */
static int
store_mark_interrupted(struct store *s, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int r;

	if ((r = store_prepare(s, "UPDATE runs SET status = 'interrupted', "
	    "finished = ? WHERE status = 'running'", &st)) < 0)
		goto fail;
	if ((r = store_sqlite_errno(sqlite3_bind_int64(st, 1, store_now()))) == 0)
		r = store_step_done(s, st);
	sqlite3_finalize(st);
	if (r == 0)
		return 0;
fail:
	return store_seterr(err, errlen, r, "cannot update runs in "
	    "%s/index.sqlite: %s", s->root, sqlite3_errmsg(s->db));
}

/* <root>/index.sqlite, malloc'ed. */
static char *
store_index_path(const struct store *s)
{
	size_t len = strlen(s->root) + sizeof "/index.sqlite";
	char *p;

	if ((p = malloc(len)) != NULL)
		snprintf(p, len, "%s/index.sqlite", s->root);
	return p;
}

static int
store_sqlite_open(struct store *s, int flags, char *err, size_t errlen)
{
	char *path;
	int rc;

	if ((path = store_index_path(s)) == NULL)
		return store_seterr(err, errlen, -ENOMEM, "out of memory");
	rc = sqlite3_open_v2(path, &s->db, flags, NULL);
	free(path);
	if (rc != SQLITE_OK)
		return store_seterr(err, errlen, store_sqlite_errno(rc),
		    "cannot open %s/index.sqlite: %s", s->root, s->db != NULL ?
		    sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, STORE_BUSY_MS);
	return 0;
}

/* A new index gets our file mode; SQLite gives -wal and -shm the same. */
static int
store_create_index(struct store *s)
{
	int fd;

	fd = openat(s->rootfd, "index.sqlite", O_RDWR | O_CREAT | O_EXCL |
	    O_CLOEXEC | O_NOFOLLOW, STORE_FILE_MODE);
	if (fd < 0)
		return errno == EEXIST ? 0 : -errno;
	if (fchmod(fd, STORE_FILE_MODE) < 0 || fsync(fd) < 0 ||
	    fsync(s->rootfd) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	close(fd);
	return 0;
}

static int
store_pragmas(struct store *s, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	const char *mode;
	int r;

	/* journal_mode answers with the mode it ended up in. */
	if ((r = store_prepare(s, "PRAGMA journal_mode = WAL", &st)) < 0)
		goto fail;
	if (sqlite3_step(st) != SQLITE_ROW ||
	    (mode = (const char *)sqlite3_column_text(st, 0)) == NULL ||
	    strcmp(mode, "wal") != 0)
		r = -EIO;
	sqlite3_finalize(st);
	if (r < 0)
		goto fail;
	/* A committed row must survive power loss. */
	if ((r = store_exec(s, "PRAGMA synchronous = FULL")) < 0 ||
	    (r = store_exec(s, "PRAGMA foreign_keys = ON")) < 0)
		goto fail;
	return 0;
fail:
	return store_seterr(err, errlen, r, "cannot configure "
	    "%s/index.sqlite: %s", s->root, sqlite3_errmsg(s->db));
}

static int
store_open_rdwr(struct store *s, char *err, size_t errlen)
{
	int r;

	if ((r = store_make_root(s, err, errlen)) < 0 ||
	    (r = store_lock(s, err, errlen)) < 0 ||
	    (r = store_make_dirs(s, err, errlen)) < 0)
		return r;
	if ((r = store_create_index(s)) < 0)
		return store_seterr(err, errlen, r, "cannot create "
		    "%s/index.sqlite: %s", s->root, strerror(-r));
	if ((r = store_sqlite_open(s, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE, err, errlen)) < 0 ||
	    (r = store_pragmas(s, err, errlen)) < 0 ||
	    (r = store_migrate(s, err, errlen)) < 0 ||
	    (r = store_layout_open(s, err, errlen)) < 0 ||
	    (r = store_mark_interrupted(s, err, errlen)) < 0)
		return r;
	return 0;
}

static int
store_open_rdonly(struct store *s, char *err, size_t errlen)
{
	struct stat st;
	char *path;
	int r, v;

	if ((path = store_index_path(s)) == NULL)
		return store_seterr(err, errlen, -ENOMEM, "out of memory");
	r = stat(path, &st) < 0 ? -errno : 0;
	free(path);
	if (r == -ENOENT)
		return store_seterr(err, errlen, r, "no archive at %s "
		    "(%s/index.sqlite does not exist)", s->root, s->root);
	if (r < 0)
		return store_seterr(err, errlen, r, "cannot read archive %s: %s",
		    s->root, strerror(-r));
	if ((r = store_sqlite_open(s, SQLITE_OPEN_READONLY, err, errlen)) < 0)
		return r;
	if ((r = store_user_version(s, &v)) < 0)
		return store_seterr(err, errlen, r, "cannot read "
		    "%s/index.sqlite: %s", s->root, sqlite3_errmsg(s->db));
	if (v == 0)
		return store_seterr(err, errlen, -ENOENT, "no archive at %s "
		    "(index.sqlite was never initialised)", s->root);
	if ((r = store_check_version(s, v, err, errlen)) < 0)
		return r;
	return store_layout_read(s, v, err, errlen);
}

int
store_open(const char *root, enum store_open_flags flags, struct store **ret,
    char *err, size_t errlen)
{
	return store_test_open(root, flags, NULL, ret, err, errlen);
}

int
store_test_open(const char *root, enum store_open_flags flags,
    const struct store_fault *fault, struct store **ret, char *err,
    size_t errlen)
{
	struct store *s;
	int r;

	if (root == NULL || *root == '\0')
		return store_seterr(err, errlen, -EINVAL, "no archive path");
	if ((s = calloc(1, sizeof *s)) == NULL ||
	    (s->root = strdup(root)) == NULL) {
		free(s);
		return store_seterr(err, errlen, -ENOMEM, "out of memory");
	}
	s->rootfd = s->tmpfd = s->msgfd = s->lockfd = -1;
	s->rdonly = flags == STORE_RDONLY;
	s->layout = STORE_LAYOUT_AB_CD;
	s->pid = (long)getpid();
	if (fault != NULL)
		s->fault = *fault;
	if (s->rdonly)
		r = store_open_rdonly(s, err, errlen);
	else
		r = store_open_rdwr(s, err, errlen);
	if (r < 0) {
		store_close(s);
		return r;
	}
	*ret = s;
	return 0;
}

int
store_clone(struct store *parent, struct store **ret, char *err, size_t errlen)
{
	struct store *s;
	int r;

	if (parent->rdonly || parent->parent != NULL)
		return store_seterr(err, errlen, -EINVAL, "only an archive "
		    "opened for writing can be cloned");
	if ((s = calloc(1, sizeof *s)) == NULL ||
	    (s->root = strdup(parent->root)) == NULL) {
		free(s);
		return store_seterr(err, errlen, -ENOMEM, "out of memory");
	}
	s->lockfd = -1;
	s->parent = parent;
	s->fault = parent->fault;
	s->layout = parent->layout;
	s->pid = parent->pid;
	s->rootfd = fcntl(parent->rootfd, F_DUPFD_CLOEXEC, 0);
	s->tmpfd = fcntl(parent->tmpfd, F_DUPFD_CLOEXEC, 0);
	s->msgfd = fcntl(parent->msgfd, F_DUPFD_CLOEXEC, 0);
	if (s->rootfd < 0 || s->tmpfd < 0 || s->msgfd < 0)
		r = store_seterr(err, errlen, -errno, "cannot open %s again: "
		    "%s", s->root, strerror(errno));
	else if ((r = store_sqlite_open(s, SQLITE_OPEN_READWRITE, err,
	    errlen)) == 0)
		r = store_pragmas(s, err, errlen);
	if (r < 0) {
		store_close(s);
		return r;
	}
	*ret = s;
	return 0;
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	/* Before tmpfd closes: the unused spares are unlinked through it,
	 * and blobs given up while queued are. */
	store_writer_stop(s);
	store_spares_stop(s);
	if (s->db != NULL && sqlite3_close(s->db) != SQLITE_OK)
		log_debug("store: close %s: %s", s->root, sqlite3_errmsg(s->db));
	if (s->tmpfd >= 0)
		close(s->tmpfd);
	if (s->msgfd >= 0)
		close(s->msgfd);
	if (s->rootfd >= 0)
		close(s->rootfd);
	/* Closing the descriptor releases the flock. */
	if (s->lockfd >= 0)
		close(s->lockfd);
	free(s->root);
	free(s);
}
