/*
 * store_layout.c - where message files live: messages/ab/<sha256>, one
 * level of fan-out whose 256 directories exist from the archive's first
 * open, so that a commit never makes a directory.  Archives written before
 * schema 3 hold messages/ab/cd/<sha256>: the owner's open moves each file
 * by rename (a crash leaves it in one place or the other), and readers
 * look in both places until meta('layout') records that the move ended.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "store_private.h"

/* Exactly `len` lowercase hex digits: the only names we create. */
static bool
store_hex_name(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (name[i] == '\0' || strchr("0123456789abcdef", name[i]) == NULL)
			return false;
	return name[len] == '\0';
}

/* The name of fan-out directory v: two lowercase hex digits. */
static void
store_hex2(unsigned v, char out[3])
{
	static const char digit[] = "0123456789abcdef";

	out[0] = digit[(v >> 4) & 0xf];
	out[1] = digit[v & 0xf];
	out[2] = '\0';
}

int
store_layout_set(struct store *s, enum store_layout l)
{
	sqlite3_stmt *st;
	int r;

	if ((r = store_prepare(s, "UPDATE meta SET value = ?1 WHERE key = "
	    "'layout'", &st)) < 0)
		return r;
	if ((r = store_sqlite_errno(sqlite3_bind_int(st, 1, (int)l))) == 0 &&
	    (r = store_step_done(s, st)) == 0 && sqlite3_changes(s->db) != 1)
		r = -EIO;
	sqlite3_finalize(st);
	return r;
}

int
store_layout_read(struct store *s, int schema, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int r, rc, v = 0;

	s->layout = STORE_LAYOUT_AB_CD;
	if (schema < STORE_SCHEMA_LAYOUT)
		return 0;
	if ((r = store_prepare(s, "SELECT value FROM meta WHERE key = "
	    "'layout'", &st)) < 0)
		goto fail;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	else
		r = rc == SQLITE_DONE ? -EIO : store_sqlite_errno(rc);
	sqlite3_finalize(st);
	if (r < 0)
		goto fail;
	if (v != STORE_LAYOUT_AB_CD && v != STORE_LAYOUT_AB)
		return store_seterr(err, errlen, -ENOTSUP, "archive %s has "
		    "message layout %d; this mailstow knows 1 and 2", s->root, v);
	s->layout = (enum store_layout)v;
	return 0;
fail:
	return store_seterr(err, errlen, r, "cannot read the layout of "
	    "%s/index.sqlite: %s", s->root, sqlite3_errmsg(s->db));
}

int
store_layout_mkdir(struct store *s, const char *name)
{
	int r = 0;

	if (mkdirat(s->msgfd, name, STORE_DIR_MODE) < 0)
		return errno == EEXIST ? 0 : -errno;
	if (store_fsync(s, s->msgfd) < 0) {
		r = -errno;
		unlinkat(s->msgfd, name, AT_REMOVEDIR);
	}
	return r;
}

int
store_layout_sync_dir(struct store *s, unsigned ab)
{
	char name[3];
	int fd, r = 0;

	store_hex2(ab, name);
	fd = openat(s->msgfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (store_fsync(s, fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

struct store_fan {
	struct store	*s;
	size_t		 n;
	uint8_t		 dir[STORE_FANOUT];	/* made (fanout) or all (move) */
};

static int
store_fan_sync(void *arg, size_t i)
{
	struct store_fan *x = arg;

	return store_layout_sync_dir(x->s, x->dir[i]);
}

/*
 * Make the fan-out directories that are missing: on an archive's first
 * open all 256 (a crash half-way makes the rest next time), later none,
 * which costs 256 mkdirat() answered EEXIST.  A new directory and
 * messages/ are fsynced before any file is renamed in; if that fails the
 * new ones are removed, so that the next open makes and syncs them anew.
 */
static int
store_layout_fanout(struct store *s)
{
	struct store_fan x = { .s = s };
	char name[3];
	size_t i, bad;
	int r = 0;

	for (i = 0; i < STORE_FANOUT; i++) {
		store_hex2((unsigned)i, name);
		if (mkdirat(s->msgfd, name, STORE_DIR_MODE) == 0)
			x.dir[x.n++] = (uint8_t)i;
		else if (errno != EEXIST) {
			r = -errno;
			break;
		}
	}
	if (r == 0 && x.n > 0 &&
	    (r = store_parallel(s, x.n, store_fan_sync, &x, &bad)) == 0 &&
	    store_fsync(s, s->msgfd) < 0)
		r = -errno;
	if (r < 0)
		for (i = 0; i < x.n; i++) {
			store_hex2(x.dir[i], name);
			unlinkat(s->msgfd, name, AT_REMOVEDIR);
		}
	return r;
}

/* Open messages/<ab> (a bare "ab") or messages/ab/cd; -errno. */
static int
store_open_dir(int dirfd, const char *name)
{
	int fd;

	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOFOLLOW);
	return fd < 0 ? -errno : fd;
}

/*
 * The old-layout directories (two hex digits) in messages/<ab>, as flags
 * indexed by their value.  Read in full before anything moves, since
 * files are about to be added to the same directory.
 */
static int
store_old_dirs(int abfd, bool cd[STORE_FANOUT])
{
	struct dirent *de;
	DIR *d;
	int fd, r = 0;

	memset(cd, 0, STORE_FANOUT * sizeof *cd);
	if ((fd = store_open_dir(abfd, ".")) < 0)
		return fd;
	if ((d = fdopendir(fd)) == NULL) {
		r = -errno;
		close(fd);
		return r;
	}
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL) {
			/* A listing cut short must not pass for complete. */
			r = -errno;
			break;
		}
		if (store_hex_name(de->d_name, 2) &&
		    (de->d_type == DT_DIR || de->d_type == DT_UNKNOWN))
			cd[strtoul(de->d_name, NULL, 16)] = true;
	}
	closedir(d);
	return r;
}

/* Is `name` a message file that belongs in messages/ab/cd? */
static bool
store_old_name(const char *name, const char *ab, const char *cd)
{
	return store_hex_name(name, STORE_HEX_LEN) &&
	    strncmp(name, ab, 2) == 0 && strncmp(name + 2, cd, 2) == 0;
}

/*
 * Move one file up: 1 moved, 0 nothing to do, -errno.  A file of the same
 * name and size in the new place holds the same bytes as far as the store
 * ever checks (a copy, or the same file under two names): the old name
 * goes.  One of another size is not ours to judge: both stay, logged.
 */
static int
store_move_file(struct store *s, int cdfd, int abfd, const char *name)
{
	struct stat o, n;

	if (fstatat(cdfd, name, &o, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISREG(o.st_mode))
		return 0;
	if (fstatat(abfd, name, &n, AT_SYMLINK_NOFOLLOW) == 0) {
		/* Rare: so sync the new entry before the old one goes,
		 * rather than wait for the sync of every directory. */
		if (S_ISREG(n.st_mode) && n.st_size == o.st_size)
			return store_fsync(s, abfd) < 0 ||
			    unlinkat(cdfd, name, 0) < 0 ? -errno : 0;
		log_debug("store: %s/messages: %s is in both layouts with "
		    "different sizes; left alone", s->root, name);
		return 0;
	} else if (errno != ENOENT)
		return -errno;
	if (store_renameat(s, cdfd, name, abfd, name) < 0)
		return errno == ENOENT ? 0 : -errno;
	return 1;
}

/* Move the files of messages/ab/cd up into messages/ab (abfd). */
static int
store_move_dir(struct store *s, int abfd, const char *ab, const char *cd,
    size_t *moved, char *err, size_t errlen)
{
	struct dirent *de;
	DIR *d;
	int fd, r = 0;

	if ((fd = store_open_dir(abfd, cd)) == -ENOTDIR || fd == -ENOENT)
		return 0;	/* a file with a short name: not ours */
	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		r = fd < 0 ? fd : -errno;
		if (fd >= 0)
			close(fd);
		return store_seterr(err, errlen, r, "cannot read "
		    "%s/messages/%s/%s: %s", s->root, ab, cd, strerror(-r));
	}
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL) {
			if ((r = -errno) < 0)
				store_seterr(err, errlen, r, "cannot read "
				    "%s/messages/%s/%s: %s", s->root, ab, cd,
				    strerror(-r));
			break;
		}
		if (!store_old_name(de->d_name, ab, cd)) {
			if (strcmp(de->d_name, ".") != 0 &&
			    strcmp(de->d_name, "..") != 0)
				log_debug("store: %s/messages/%s/%s/%s is no "
				    "message file; left alone", s->root, ab, cd,
				    de->d_name);
			continue;
		}
		if ((r = store_move_file(s, dirfd(d), abfd, de->d_name)) > 0)
			(*moved)++;
		else if (r < 0) {
			store_seterr(err, errlen, r, "cannot move "
			    "%s/messages/%s/%s/%s to the new layout: %s",
			    s->root, ab, cd, de->d_name, strerror(-r));
			break;
		}
	}
	closedir(d);
	return r;
}

/*
 * Pass over every messages/ab: move the files of its old directories up
 * (rmdir_pass false), or remove those directories once empty (true).
 */
static int
store_layout_pass(struct store *s, bool rmdir_pass, size_t *moved,
    char *err, size_t errlen)
{
	bool cd[STORE_FANOUT];
	char ab[3], name[3];
	unsigned i, j;
	int abfd, r = 0;

	for (i = 0; i < STORE_FANOUT && r == 0; i++) {
		store_hex2(i, ab);
		if ((abfd = store_open_dir(s->msgfd, ab)) < 0 ||
		    (r = store_old_dirs(abfd, cd)) < 0) {
			r = abfd < 0 ? abfd : r;
			store_seterr(err, errlen, r, "cannot read "
			    "%s/messages/%s: %s", s->root, ab, strerror(-r));
		}
		for (j = 0; j < STORE_FANOUT && r == 0; j++) {
			if (!cd[j])
				continue;
			store_hex2(j, name);
			if (!rmdir_pass)
				r = store_move_dir(s, abfd, ab, name, moved, err,
				    errlen);
			else if (unlinkat(abfd, name, AT_REMOVEDIR) < 0)
				log_debug("store: cannot remove %s/messages/"
				    "%s/%s: %s", s->root, ab, name,
				    strerror(errno));
		}
		if (abfd >= 0)
			close(abfd);
	}
	return r;
}

/*
 * Files first (renames only, no data is copied), then every messages/ab
 * fsynced, so that each new entry is durable - including those an earlier,
 * crashed migration made - before the old directories go and before the
 * index says the move is done.  Until then readers look in both places.
 */
static int
store_layout_migrate(struct store *s, char *err, size_t errlen)
{
	struct store_fan x = { .s = s, .n = STORE_FANOUT };
	size_t i, bad, moved = 0;
	int r;

	if ((r = store_layout_pass(s, false, &moved, err, errlen)) < 0)
		return r;
	for (i = 0; i < STORE_FANOUT; i++)
		x.dir[i] = (uint8_t)i;
	if ((r = store_parallel(s, x.n, store_fan_sync, &x, &bad)) < 0)
		return store_seterr(err, errlen, r, "cannot sync "
		    "%s/messages/%02x: %s", s->root, x.dir[bad], strerror(-r));
	if ((r = store_layout_pass(s, true, &moved, err, errlen)) < 0)
		return r;
	if ((r = store_layout_set(s, STORE_LAYOUT_AB)) < 0)
		return store_seterr(err, errlen, r, "cannot record the new "
		    "layout in %s/index.sqlite: %s", s->root,
		    sqlite3_errmsg(s->db));
	s->layout = STORE_LAYOUT_AB;
	log_debug("store: %s: moved %zu message files to messages/ab/",
	    s->root, moved);
	return 0;
}

int
store_layout_open(struct store *s, char *err, size_t errlen)
{
	int r;

	if ((r = store_layout_read(s, STORE_SCHEMA_LAYOUT, err, errlen)) < 0)
		return r;
	if ((r = store_layout_fanout(s)) < 0)
		return store_seterr(err, errlen, r, "cannot create the "
		    "directories of %s/messages: %s", s->root, strerror(-r));
	if (s->layout == STORE_LAYOUT_AB)
		return 0;
	return store_layout_migrate(s, err, errlen);
}

static int
store_path_fmt(const struct store *s, const char *hex, enum store_layout l,
    char *buf, size_t buflen)
{
	int n;

	if (l == STORE_LAYOUT_AB)
		n = snprintf(buf, buflen, "%s/messages/%.2s/%s", s->root, hex,
		    hex);
	else
		n = snprintf(buf, buflen, "%s/messages/%.2s/%.2s/%s", s->root,
		    hex, hex + 2, hex);
	if (n < 0 || (size_t)n >= buflen)
		return -ERANGE;
	return 0;
}

/*
 * While a move to the new layout is unfinished the file may be in either
 * place: the new one, the old one, or the new one again when the owner
 * moved it between the two looks.  Not found: the new place.
 */
int
store_message_path(const struct store *s, const char *hex, char *buf,
    size_t buflen)
{
	struct stat st;
	int r;

	if (hex == NULL || !store_hex_name(hex, STORE_HEX_LEN))
		return -EINVAL;
	if ((r = store_path_fmt(s, hex, STORE_LAYOUT_AB, buf, buflen)) < 0 ||
	    s->layout == STORE_LAYOUT_AB || stat(buf, &st) == 0)
		return r;
	if (store_path_fmt(s, hex, STORE_LAYOUT_AB_CD, buf, buflen) == 0 &&
	    stat(buf, &st) == 0)
		return 0;
	return store_path_fmt(s, hex, STORE_LAYOUT_AB, buf, buflen);
}
