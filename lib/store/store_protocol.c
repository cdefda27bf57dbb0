/*
 * store_protocol.c - writing the protocol of a run: the run row, its
 * events and its per-folder counts.  Each call commits on its own (they
 * are small), so a run killed half-way leaves what it had reported.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "store_private.h"

static const char *const store_level_names[] = {
	[STORE_INFO] = "info",
	[STORE_WARNING] = "warning",
	[STORE_ERROR] = "error",
};

static const char *const store_run_statuses[] = {
	"succeeded", "completed_with_errors", "failed", "interrupted",
};

int
store_run_begin(struct store *s, const char *profile, const char *trigger,
    int64_t *ret_run_id)
{
	sqlite3_stmt *st;
	int r;

	if ((r = store_check_writable(s)) < 0)
		return r;
	if (profile == NULL || trigger == NULL)
		return -EINVAL;
	if ((r = store_prepare(s, "INSERT INTO runs(profile, trigger, started, "
	    "status) VALUES(?1, ?2, ?3, 'running')", &st)) < 0)
		return r;
	if ((r = store_bind_text(st, 1, profile)) == 0 &&
	    (r = store_bind_text(st, 2, trigger)) == 0 &&
	    (r = store_sqlite_errno(sqlite3_bind_int64(st, 3, store_now()))) == 0)
		r = store_step_done(s, st);
	sqlite3_finalize(st);
	if (r == 0) {
		*ret_run_id = sqlite3_last_insert_rowid(s->db);
		store_spares_run_begun(s);
	}
	return r;
}

int
store_run_event(struct store *s, int64_t run, enum store_level level,
    const char *mailbox, const char *folder, uint32_t uid, const char *text)
{
	sqlite3_stmt *st;
	int r;

	if ((r = store_check_writable(s)) < 0)
		return r;
	if ((unsigned)level > STORE_ERROR || text == NULL)
		return -EINVAL;
	if ((r = store_prepare(s, "INSERT INTO run_events(run, time, level, "
	    "mailbox, folder, uid, text) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	    &st)) < 0)
		return r;
	if ((r = store_sqlite_errno(sqlite3_bind_int64(st, 1, run))) == 0 &&
	    (r = store_sqlite_errno(sqlite3_bind_int64(st, 2, store_now()))) == 0 &&
	    (r = store_bind_text(st, 3, store_level_names[level])) == 0 &&
	    (r = store_bind_text(st, 4, mailbox)) == 0 &&
	    (r = store_bind_text(st, 5, folder)) == 0 &&
	    (r = store_sqlite_errno(uid == 0 ? sqlite3_bind_null(st, 6) :
	    sqlite3_bind_int64(st, 6, uid))) == 0 &&
	    (r = store_bind_text(st, 7, text)) == 0)
		r = store_step_done(s, st);
	sqlite3_finalize(st);
	return r;
}

static int
store_bind_counts(sqlite3_stmt *st, int first, const struct store_counts *c)
{
	const uint64_t v[] = { c->found, c->archived, c->skipped, c->failed,
	    c->bytes };
	size_t i;
	int rc;

	for (i = 0; i < sizeof v / sizeof *v; i++) {
		rc = sqlite3_bind_int64(st, first + (int)i, (int64_t)v[i]);
		if (rc != SQLITE_OK)
			return store_sqlite_errno(rc);
	}
	return 0;
}

int
store_run_folder(struct store *s, int64_t run, const char *mailbox,
    const char *folder, const struct store_counts *c)
{
	sqlite3_stmt *st;
	int r;

	if ((r = store_check_writable(s)) < 0)
		return r;
	if (mailbox == NULL || folder == NULL)
		return -EINVAL;
	if ((r = store_prepare(s, "INSERT OR REPLACE INTO run_folders(run, "
	    "mailbox, folder, found, archived, skipped, failed, bytes) "
	    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", &st)) < 0)
		return r;
	if ((r = store_sqlite_errno(sqlite3_bind_int64(st, 1, run))) == 0 &&
	    (r = store_bind_text(st, 2, mailbox)) == 0 &&
	    (r = store_bind_text(st, 3, folder)) == 0 &&
	    (r = store_bind_counts(st, 4, c)) == 0)
		r = store_step_done(s, st);
	sqlite3_finalize(st);
	return r;
}

static bool
store_status_valid(const char *status)
{
	size_t i;

	for (i = 0; i < sizeof store_run_statuses / sizeof *store_run_statuses;
	    i++)
		if (strcmp(status, store_run_statuses[i]) == 0)
			return true;
	return false;
}

int
store_run_finish(struct store *s, int64_t run, const char *status,
    const struct store_counts *c)
{
	sqlite3_stmt *st;
	int r;

	if ((r = store_check_writable(s)) < 0)
		return r;
	if (status == NULL || !store_status_valid(status))
		return -EINVAL;
	/* The run is over, whether or not its row gets written. */
	store_spares_run_ended(s);
	if ((r = store_prepare(s, "UPDATE runs SET finished = ?1, status = ?2, "
	    "found = ?3, archived = ?4, skipped = ?5, failed = ?6, bytes = ?7 "
	    "WHERE id = ?8", &st)) < 0)
		return r;
	if ((r = store_sqlite_errno(sqlite3_bind_int64(st, 1, store_now()))) == 0 &&
	    (r = store_bind_text(st, 2, status)) == 0 &&
	    (r = store_bind_counts(st, 3, c)) == 0 &&
	    (r = store_sqlite_errno(sqlite3_bind_int64(st, 8, run))) == 0)
		r = store_step_done(s, st);
	sqlite3_finalize(st);
	if (r == 0 && sqlite3_changes(s->db) == 0)
		r = -ENOENT;
	return r;
}

int
store_last_run_info(struct store *s, const char *profile,
    struct store_run_info *ret)
{
	const unsigned char *status;
	sqlite3_stmt *st;
	int r, rc;

	if ((r = store_prepare(s, "SELECT id, started, finished, status "
	    "FROM runs WHERE profile = ?1 ORDER BY id DESC LIMIT 1", &st)) < 0)
		return r;
	if ((r = store_bind_text(st, 1, profile)) == 0) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			ret->id = sqlite3_column_int64(st, 0);
			ret->started = sqlite3_column_int64(st, 1);
			ret->finished = sqlite3_column_int64(st, 2);
			status = sqlite3_column_text(st, 3);
			snprintf(ret->status, sizeof ret->status, "%s",
			    status != NULL ? (const char *)status : "");
		} else {
			r = rc == SQLITE_DONE ? -ENOENT : store_sqlite_errno(rc);
		}
	}
	sqlite3_finalize(st);
	return r;
}

int
store_last_run(struct store *s, const char *profile, int64_t *ret)
{
	sqlite3_stmt *st;
	int r, rc;

	if ((r = store_prepare(s, "SELECT id FROM runs WHERE profile = ?1 "
	    "ORDER BY id DESC LIMIT 1", &st)) < 0)
		return r;
	if ((r = store_bind_text(st, 1, profile)) == 0) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			*ret = sqlite3_column_int64(st, 0);
		else
			r = rc == SQLITE_DONE ? -ENOENT : store_sqlite_errno(rc);
	}
	sqlite3_finalize(st);
	return r;
}
