/*
 * store_commit.c - making a batch of messages durable in the order rule 1
 * of DESIGN.md demands: every new file fsynced, renamed into messages/ab/,
 * each directory fsynced once, and only then the index rows, in one
 * transaction.
 * Also the incremental state the planner reads: known UIDs, folder state.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "store_private.h"

/* Is the final file there already, with the size these bytes have? */
static int
store_have_file(struct store *s, const char *rel, uint64_t size, bool *ret)
{
	struct stat st;

	if (fstatat(s->msgfd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT)
			return -errno;
		*ret = false;
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return -EEXIST;
	if ((uint64_t)st.st_size != size) {
		/* Not what its name says: replace it with the right bytes. */
		log_debug("store: %s/messages/%s has %lld bytes, not %llu; "
		    "replacing it", s->root, rel, (long long)st.st_size,
		    (unsigned long long)size);
		*ret = false;
		return 0;
	}
	*ret = true;
	return 0;
}

/* messages/ab/<sha256>, relative to s->msgfd. */
static void
store_blob_rel(const struct store_blob *b, char *rel, size_t len)
{
	snprintf(rel, len, "%.2s/%s", b->hex, b->hex);
}

/* The blob's descriptor was closed at its end: fsync it by name. */
static int
store_fsync_tmp(struct store *s, struct store_blob *b)
{
	int fd, r = 0;

	fd = openat(s->tmpfd, b->tmpname, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (store_fsync(s, fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

/*
 * Rename the fsynced temp file into messages/ab/.  The fan-out directories
 * exist from the archive's open; one that went missing since is made
 * again (and its entry synced) before a second try.  The caller fsyncs
 * messages/ab afterwards.
 */
static int
store_place_blob(struct store *s, struct store_blob *b, char *err,
    size_t errlen)
{
	char rel[STORE_HEX_LEN + 4], dir[3];
	int r;

	store_blob_rel(b, rel, sizeof rel);
	if (store_renameat(s, s->tmpfd, b->tmpname, s->msgfd, rel) < 0) {
		r = -errno;
		snprintf(dir, sizeof dir, "%.2s", b->hex);
		if (r == -ENOENT && (r = store_layout_mkdir(s, dir)) < 0)
			return store_seterr(err, errlen, r, "cannot create "
			    "%s/messages/%s: %s", s->root, dir, strerror(-r));
		if (r == 0 && store_renameat(s, s->tmpfd, b->tmpname, s->msgfd,
		    rel) < 0)
			r = -errno;
		if (r < 0)
			return store_seterr(err, errlen, r, "cannot move "
			    "message into %s/messages/%s: %s", s->root, rel,
			    strerror(-r));
	}
	b->tmp_exists = false;
	return 0;
}

struct store_sync_ctx {
	struct store *s;
	struct store_blob **blobs;	/* each distinct blob of the group */
	bool	*place;			/* blobs[i] is new: sync, rename */
	struct store_blob **sync;	/* the new ones */
	uint8_t	 dirs[STORE_FANOUT];	/* distinct messages/ab touched */
	bool	 seen[STORE_FANOUT];
	size_t	 nb, ns, nd;
};

static int
store_sync_blob(void *arg, size_t i)
{
	struct store_sync_ctx *x = arg;

	return store_fsync_tmp(x->s, x->sync[i]);
}

static int
store_sync_dir(void *arg, size_t i)
{
	struct store_sync_ctx *x = arg;

	return store_layout_sync_dir(x->s, x->dirs[i]);
}

/* Was the same content placed by an earlier blob of this group? */
static bool
store_hash_seen(const struct store_sync_ctx *x, size_t i)
{
	size_t j;

	for (j = 0; j < i; j++)
		if (memcmp(x->blobs[j]->hash, x->blobs[i]->hash,
		    STORE_HASH_LEN) == 0)
			return true;
	return false;
}

/*
 * Which blobs need their bytes synced and renamed: not those whose file
 * is in place (it was fsynced before it got its name) nor a second copy
 * of the same bytes in one group.  Their temp files go; their directory
 * is synced all the same, since a file found in place may be one whose
 * directory sync failed before.
 */
static int
store_plan_files(struct store_sync_ctx *x, char *err, size_t errlen)
{
	char rel[STORE_HEX_LEN + 4];
	struct store_blob *b;
	bool have;
	size_t i;
	int r;

	for (i = 0; i < x->nb; i++) {
		b = x->blobs[i];
		store_blob_rel(b, rel, sizeof rel);
		have = store_hash_seen(x, i);
		if (!have && (r = store_have_file(x->s, rel, b->size,
		    &have)) < 0)
			return store_seterr(err, errlen, r, "cannot check "
			    "%s/messages/%s: %s", x->s->root, rel, strerror(-r));
		x->place[i] = !have;
		if (!have)
			x->sync[x->ns++] = b;
		if (!x->seen[b->hash[0]]) {
			x->seen[b->hash[0]] = true;
			x->dirs[x->nd++] = b->hash[0];
		}
	}
	return 0;
}

/*
 * Multidrop files one message under several archive users: those entries
 * share one blob, which is placed once and freed once.  Groups are small
 * (a few hundred), so a scan back is cheap.
 */
static bool
store_blob_first_use(const struct store_msg *msgs, size_t i)
{
	size_t j;

	for (j = 0; j < i; j++)
		if (msgs[j].blob == msgs[i].blob)
			return false;
	return true;
}

/* Sync the new files, rename them in, sync each messages/ab touched once. */
static int
store_commit_sync(struct store_sync_ctx *x, char *err, size_t errlen)
{
	struct store *s = x->s;
	size_t i, bad;
	int r;

	if ((r = store_plan_files(x, err, errlen)) < 0)
		return r;
	/* Every file is on disk before any of them gets its name. */
	if ((r = store_parallel(s, x->ns, store_sync_blob, x, &bad)) < 0)
		return store_seterr(err, errlen, r, "cannot sync message %s to "
		    "disk: %s", x->sync[bad]->hex, strerror(-r));
	for (i = 0; i < x->nb; i++) {
		if (x->place[i])
			r = store_place_blob(s, x->blobs[i], err, errlen);
		else if (unlinkat(s->tmpfd, x->blobs[i]->tmpname, 0) == 0)
			x->blobs[i]->tmp_exists = false;
		if (r < 0)
			return r;
	}
	if ((r = store_parallel(s, x->nd, store_sync_dir, x, &bad)) < 0)
		return store_seterr(err, errlen, r, "cannot sync "
		    "%s/messages/%02x: %s", s->root, x->dirs[bad], strerror(-r));
	return 0;
}

static int
store_commit_files(struct store *s, struct store_msg *msgs, size_t n,
    char *err, size_t errlen)
{
	struct store_sync_ctx *x;
	size_t i;
	int r;

	if ((x = calloc(1, sizeof *x)) == NULL ||
	    (x->blobs = calloc(n, sizeof *x->blobs)) == NULL ||
	    (x->sync = calloc(n, sizeof *x->sync)) == NULL ||
	    (x->place = calloc(n, sizeof *x->place)) == NULL) {
		r = store_seterr(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	x->s = s;
	for (i = 0; i < n; i++)
		if (!msgs[i].skipped && store_blob_first_use(msgs, i))
			x->blobs[x->nb++] = msgs[i].blob;
	r = store_commit_sync(x, err, errlen);
out:
	if (x != NULL) {
		free(x->blobs);
		free(x->sync);
		free(x->place);
	}
	free(x);
	return r;
}

enum { ST_BLOB, ST_MSG, ST_MSGID, ST_LOC, ST_UIDL, ST_SKIP, ST_MAX };

static const char *const store_commit_sql[ST_MAX] = {
	"INSERT OR IGNORE INTO blobs(hash, size) VALUES(?1, ?2)",
	"INSERT OR IGNORE INTO messages(archive_user, hash, message_id, date, "
	"from_, to_, subject, size, internaldate, first_run) "
	"VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	"SELECT id FROM messages WHERE archive_user = ?1 AND hash = ?2",
	"INSERT OR IGNORE INTO locations(message, profile, mailbox, folder, "
	"uidvalidity, uid, run) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	"INSERT OR IGNORE INTO pop3_seen(profile, mailbox, uidl, hash) "
	"VALUES(?1, ?2, ?3, ?4)",
	"INSERT OR IGNORE INTO skipped(profile, mailbox, folder, uidvalidity, "
	"uid, uidl, run) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
};


/* A POP3 message's UIDL is seen in the same transaction as its row. */
static int
store_index_uidl(struct store *s, sqlite3_stmt *st, const struct store_msg *m)
{
	int rc;

	if (m->uidl == NULL)
		return 0;
	if ((rc = sqlite3_bind_text(st, 1, m->profile, -1, SQLITE_STATIC)) !=
	    SQLITE_OK ||
	    (rc = sqlite3_bind_text(st, 2, m->mailbox, -1, SQLITE_STATIC)) !=
	    SQLITE_OK ||
	    (rc = sqlite3_bind_text(st, 3, m->uidl, -1, SQLITE_STATIC)) !=
	    SQLITE_OK ||
	    (rc = sqlite3_bind_text(st, 4, m->blob->hex, -1, SQLITE_STATIC)) !=
	    SQLITE_OK)
		return store_sqlite_errno(rc);
	return store_step_done(s, st);
}

static int
store_bind_i64_or_null(sqlite3_stmt *st, int idx, int64_t v)
{
	if (v == 0)
		return sqlite3_bind_null(st, idx);
	return sqlite3_bind_int64(st, idx, v);
}

static int
store_index_skipped(struct store *s, sqlite3_stmt *st, const struct store_msg *m)
{
	int rc;

	if ((rc = sqlite3_bind_text(st, 1, m->profile, -1, SQLITE_STATIC)) !=
	    SQLITE_OK ||
	    (rc = sqlite3_bind_text(st, 2, m->mailbox, -1, SQLITE_STATIC)) !=
	    SQLITE_OK ||
	    (rc = sqlite3_bind_text(st, 3, m->folder, -1, SQLITE_STATIC)) !=
	    SQLITE_OK ||
	    (rc = sqlite3_bind_int64(st, 4, m->uidvalidity)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(st, 5, m->uid)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(st, 6, m->uidl != NULL ? m->uidl : "", -1,
	    SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = store_bind_i64_or_null(st, 7, m->run_id)) != SQLITE_OK)
		return store_sqlite_errno(rc);
	return store_step_done(s, st);
}

/* Bind the columns of a messages row; a SQLite result code. */
static int
store_bind_message(sqlite3_stmt *st, const struct store_msg *m)
{
	const char *text[] = { m->archive_user, m->blob->hex, m->message_id,
	    m->date, m->from, m->to, m->subject };
	size_t i;
	int rc;

	for (i = 0; i < sizeof text / sizeof *text; i++) {
		if (text[i] == NULL)
			rc = sqlite3_bind_null(st, (int)i + 1);
		else
			rc = sqlite3_bind_text(st, (int)i + 1, text[i], -1,
			    SQLITE_STATIC);
		if (rc != SQLITE_OK)
			return rc;
	}
	if ((rc = sqlite3_bind_int64(st, 8, (int64_t)m->blob->size)) !=
	    SQLITE_OK ||
	    (rc = store_bind_i64_or_null(st, 9, m->internaldate)) != SQLITE_OK)
		return rc;
	return store_bind_i64_or_null(st, 10, m->run_id);
}

/* Insert the message row unless the user has it; its id either way. */
static int
store_index_message(struct store *s, sqlite3_stmt **st, struct store_msg *m,
    int64_t *ret_id)
{
	int r, rc;

	if ((rc = store_bind_message(st[ST_MSG], m)) != SQLITE_OK)
		return store_sqlite_errno(rc);
	if ((r = store_step_done(s, st[ST_MSG])) < 0)
		return r;
	m->duplicate = sqlite3_changes(s->db) == 0;
	if (!m->duplicate) {
		*ret_id = sqlite3_last_insert_rowid(s->db);
		return 0;
	}
	if ((rc = sqlite3_bind_text(st[ST_MSGID], 1, m->archive_user, -1,
	    SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(st[ST_MSGID], 2, m->blob->hex, -1,
	    SQLITE_STATIC)) != SQLITE_OK)
		return store_sqlite_errno(rc);
	rc = sqlite3_step(st[ST_MSGID]);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? -EIO : store_sqlite_errno(rc);
	*ret_id = sqlite3_column_int64(st[ST_MSGID], 0);
	return 0;
}

static int
store_index_one(struct store *s, sqlite3_stmt **st, struct store_msg *m)
{
	const struct store_blob *b = m->blob;
	int64_t id = 0;
	int rc, i;

	for (i = 0; i < ST_MAX; i++) {
		sqlite3_reset(st[i]);
		sqlite3_clear_bindings(st[i]);
	}
	if (m->skipped)
		return store_index_skipped(s, st[ST_SKIP], m);
	if ((rc = sqlite3_bind_text(st[ST_BLOB], 1, b->hex, -1,
	    SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(st[ST_BLOB], 2, (int64_t)b->size)) !=
	    SQLITE_OK)
		return store_sqlite_errno(rc);
	if ((rc = store_step_done(s, st[ST_BLOB])) < 0 ||
	    (rc = store_index_message(s, st, m, &id)) < 0)
		return rc;
	if ((rc = sqlite3_bind_int64(st[ST_LOC], 1, id)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(st[ST_LOC], 2, m->profile, -1,
	    SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(st[ST_LOC], 3, m->mailbox, -1,
	    SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(st[ST_LOC], 4, m->folder, -1,
	    SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(st[ST_LOC], 5, m->uidvalidity)) !=
	    SQLITE_OK ||
	    (rc = sqlite3_bind_int64(st[ST_LOC], 6, m->uid)) != SQLITE_OK ||
	    (rc = store_bind_i64_or_null(st[ST_LOC], 7, m->run_id)) !=
	    SQLITE_OK)
		return store_sqlite_errno(rc);
	if ((rc = store_step_done(s, st[ST_LOC])) < 0)
		return rc;
	return store_index_uidl(s, st[ST_UIDL], m);
}

static int
store_commit_index(struct store *s, struct store_msg *msgs, size_t n,
    char *err, size_t errlen)
{
	sqlite3_stmt *st[ST_MAX] = { NULL };
	size_t i;
	int r = 0, k;

	for (k = 0; k < ST_MAX && r == 0; k++)
		r = store_prepare(s, store_commit_sql[k], &st[k]);
	if (r == 0)
		r = store_exec(s, "BEGIN IMMEDIATE");
	for (i = 0; i < n && r == 0; i++)
		r = store_index_one(s, st, &msgs[i]);
	if (r == 0)
		r = store_exec(s, "COMMIT");
	if (r < 0)
		store_seterr(err, errlen, r, "cannot record messages in "
		    "%s/index.sqlite: %s", s->root, sqlite3_errmsg(s->db));
	for (k = 0; k < ST_MAX; k++)
		sqlite3_finalize(st[k]);
	if (r < 0 && !sqlite3_get_autocommit(s->db))
		store_exec(s, "ROLLBACK");
	return r;
}

static int
store_commit_check(struct store *s, struct store_msg *msgs, size_t n,
    char *err, size_t errlen)
{
	size_t i;

	if (store_check_writable(s) < 0)
		return store_seterr(err, errlen, -EROFS, "archive %s is open "
		    "read-only", s->root);
	for (i = 0; i < n; i++) {
		const struct store_msg *m = &msgs[i];

		if (m->blob == NULL || !m->blob->ended ||
		    (m->blob->store != s && m->blob->store != s->parent))
			return store_seterr(err, errlen, -EINVAL, "message %zu "
			    "of the batch is not a finished blob of this "
			    "archive", i);
		if ((m->archive_user == NULL && !m->skipped) ||
		    m->profile == NULL ||
		    m->mailbox == NULL || m->folder == NULL)
			return store_seterr(err, errlen, -EINVAL, "message %zu "
			    "of the batch lacks archive user, profile, mailbox "
			    "or folder", i);
	}
	return 0;
}

/*
 * The bytes of every blob are on their way to the disk: wait for the
 * writer thread, whose errors (and temp file) are known only then.
 */
static int
store_commit_settle(struct store *s, struct store_msg *msgs, size_t n,
    char *err, size_t errlen)
{
	struct store_blob *b;
	size_t i;
	int r;

	for (i = 0; i < n; i++) {
		if (!store_blob_first_use(msgs, i))
			continue;
		b = msgs[i].blob;
		if ((r = store_blob_settle(b)) < 0 && b->tmpname[0] == '\0')
			return store_seterr(err, errlen, r, "creating a temp "
			    "file in %s/tmp: %s", s->root, strerror(-r));
		if (r < 0)
			return store_seterr(err, errlen, r, "writing %s/tmp/%s: "
			    "%s", s->root, b->tmpname, strerror(-r));
		if (!b->tmp_exists)
			return store_seterr(err, errlen, -EINVAL, "message %zu "
			    "of the batch is not a finished blob of this "
			    "archive", i);
	}
	return 0;
}

int
store_commit(struct store *s, struct store_msg *msgs, size_t n, char *err,
    size_t errlen)
{
	size_t i;
	int r;

	for (i = 0; i < n; i++)
		msgs[i].duplicate = false;
	if ((r = store_commit_check(s, msgs, n, err, errlen)) == 0 && n > 0 &&
	    (r = store_commit_settle(s, msgs, n, err, errlen)) == 0 &&
	    (r = store_commit_files(s, msgs, n, err, errlen)) == 0)
		r = store_commit_index(s, msgs, n, err, errlen);
	for (i = 0; i < n; i++) {
		if (r < 0)
			msgs[i].duplicate = false;
		if (store_blob_first_use(msgs, i))
			store_blob_free(msgs[i].blob);
	}
	for (i = 0; i < n; i++)
		msgs[i].blob = NULL;
	return r;
}

int
store_known_uids(struct store *s, const char *profile, const char *mailbox,
    const char *folder, uint32_t uidvalidity, uint32_t **ret, size_t *ret_n)
{
	sqlite3_stmt *st;
	uint32_t *v = NULL, *nv;
	size_t n = 0, cap = 0;
	int r, rc;

	if ((r = store_prepare(s, "SELECT uid FROM locations WHERE "
	    "profile = ?1 AND mailbox = ?2 AND folder = ?3 AND "
	    "uidvalidity = ?4 UNION SELECT uid FROM skipped WHERE "
	    "profile = ?1 AND mailbox = ?2 AND folder = ?3 AND "
	    "uidvalidity = ?4 ORDER BY uid", &st)) < 0)
		return r;
	if ((r = store_bind_text(st, 1, profile)) < 0 ||
	    (r = store_bind_text(st, 2, mailbox)) < 0 ||
	    (r = store_bind_text(st, 3, folder)) < 0 ||
	    (r = store_sqlite_errno(sqlite3_bind_int64(st, 4, uidvalidity))) < 0)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap == 0 ? 256 : cap * 2;
			if (cap > SIZE_MAX / sizeof *v ||
			    (nv = realloc(v, cap * sizeof *v)) == NULL) {
				r = -ENOMEM;
				goto out;
			}
			v = nv;
		}
		v[n++] = (uint32_t)sqlite3_column_int64(st, 0);
	}
	if (rc != SQLITE_DONE)
		r = store_sqlite_errno(rc);
out:
	sqlite3_finalize(st);
	if (r < 0) {
		free(v);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int
store_folder_state_get(struct store *s, const char *profile,
    const char *mailbox, const char *folder, struct store_folder_state *ret)
{
	sqlite3_stmt *st;
	int r, rc;

	if ((r = store_prepare(s, "SELECT uidvalidity, uidnext, messages, "
	    "highestmodseq FROM folder_state WHERE profile = ?1 AND "
	    "mailbox = ?2 AND folder = ?3", &st)) < 0)
		return r;
	if ((r = store_bind_text(st, 1, profile)) < 0 ||
	    (r = store_bind_text(st, 2, mailbox)) < 0 ||
	    (r = store_bind_text(st, 3, folder)) < 0)
		goto out;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		ret->uidvalidity = (uint32_t)sqlite3_column_int64(st, 0);
		ret->uidnext = (uint32_t)sqlite3_column_int64(st, 1);
		ret->messages = (uint32_t)sqlite3_column_int64(st, 2);
		ret->highestmodseq = (uint64_t)sqlite3_column_int64(st, 3);
	} else
		r = rc == SQLITE_DONE ? -ENOENT : store_sqlite_errno(rc);
out:
	sqlite3_finalize(st);
	return r;
}

int
store_folder_state_set(struct store *s, const char *profile,
    const char *mailbox, const char *folder,
    const struct store_folder_state *fs)
{
	sqlite3_stmt *st;
	int r;

	if ((r = store_check_writable(s)) < 0)
		return r;
	if (profile == NULL || mailbox == NULL || folder == NULL)
		return -EINVAL;
	if ((r = store_prepare(s, "INSERT OR REPLACE INTO folder_state(profile, "
	    "mailbox, folder, uidvalidity, uidnext, messages, highestmodseq) "
	    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)", &st)) < 0)
		return r;
	if ((r = store_bind_text(st, 1, profile)) < 0 ||
	    (r = store_bind_text(st, 2, mailbox)) < 0 ||
	    (r = store_bind_text(st, 3, folder)) < 0 ||
	    (r = store_sqlite_errno(sqlite3_bind_int64(st, 4,
	    fs->uidvalidity))) < 0 ||
	    (r = store_sqlite_errno(sqlite3_bind_int64(st, 5, fs->uidnext))) < 0 ||
	    (r = store_sqlite_errno(sqlite3_bind_int64(st, 6, fs->messages))) < 0 ||
	    (r = store_sqlite_errno(sqlite3_bind_int64(st, 7,
	    (int64_t)fs->highestmodseq))) < 0)
		goto out;
	r = store_step_done(s, st);
out:
	sqlite3_finalize(st);
	return r;
}

int
store_uidls_known(struct store *s, const char *profile, const char *mailbox,
    const char *const *uidls, size_t n, bool *ret_known)
{
	sqlite3_stmt *st;
	size_t i;
	int r, rc = SQLITE_OK;

	if ((r = store_prepare(s, "SELECT 1 FROM pop3_seen WHERE profile = ?1 "
	    "AND mailbox = ?2 AND uidl = ?3 UNION ALL SELECT 1 FROM skipped "
	    "WHERE profile = ?1 AND mailbox = ?2 AND uidl = ?3 AND uidl != ''",
	    &st)) < 0)
		return r;
	if ((r = store_bind_text(st, 1, profile)) < 0 ||
	    (r = store_bind_text(st, 2, mailbox)) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		sqlite3_reset(st);
		if ((r = store_bind_text(st, 3, uidls[i])) < 0)
			goto out;
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			r = store_sqlite_errno(rc);
			goto out;
		}
		ret_known[i] = rc == SQLITE_ROW;
	}
out:
	sqlite3_finalize(st);
	return r;
}
