/*
 * store_print.c - the read side for the command-line tool: one run's
 * protocol, the list of runs, and the messages of an archive user, each
 * as JSON (for scripts) or as readable text.  Only SELECTs: these work on
 * a read-only handle while another process archives.
 */
#include <errno.h>
#include <stdio.h>

#include "store_private.h"

#define RUN_COLS "id, profile, trigger, status, started, finished, found, " \
	"archived, skipped, failed, bytes"
enum { RC_ID, RC_PROFILE, RC_TRIGGER, RC_STATUS, RC_STARTED, RC_FINISHED,
	RC_FOUND, RC_ARCHIVED, RC_SKIPPED, RC_FAILED, RC_BYTES };

static const char *const store_count_names[] = {
	"found", "archived", "skipped", "failed", "bytes",
};

static int
store_step_end(int rc)
{
	return rc == SQLITE_DONE ? 0 : store_sqlite_errno(rc);
}

static int
store_print_done(FILE *out, int r)
{
	if (r == 0 && (fflush(out) != 0 || ferror(out)))
		return -EIO;
	return r;
}

/* Print an escaped string and pad it to `width` columns. */
static void
store_text_pad(FILE *out, const char *s, int width)
{
	size_t n;

	for (n = store_text_str(out, s); n < (size_t)width; n++)
		putc(' ', out);
}

/* Counts of `first`.. as a JSON object (run rows and folder rows). */
static void
store_json_counts(FILE *out, sqlite3_stmt *st, int first)
{
	size_t i;

	for (i = 0; i < 5; i++)
		fprintf(out, "%s\"%s\":%lld", i == 0 ? "" : ",",
		    store_count_names[i],
		    (long long)sqlite3_column_int64(st, first + (int)i));
}

/* The run object without its closing brace. */
static void
store_json_run(FILE *out, sqlite3_stmt *st)
{
	putc('{', out);
	store_json_kv_int(out, "run", sqlite3_column_int64(st, RC_ID), true);
	store_json_kv_col(out, "profile", st, RC_PROFILE, false);
	store_json_kv_col(out, "trigger", st, RC_TRIGGER, false);
	store_json_kv_col(out, "status", st, RC_STATUS, false);
	store_json_kv_time(out, "started", st, RC_STARTED, false);
	store_json_kv_time(out, "finished", st, RC_FINISHED, false);
	fputs(",\"counts\":{", out);
	store_json_counts(out, st, RC_FOUND);
	putc('}', out);
}

static void
store_text_run(FILE *out, sqlite3_stmt *st)
{
	fprintf(out, "run %lld  profile ", (long long)sqlite3_column_int64(st,
	    RC_ID));
	store_text_col(out, st, RC_PROFILE);
	fputs("  trigger ", out);
	store_text_col(out, st, RC_TRIGGER);
	fputs("  status ", out);
	store_text_col(out, st, RC_STATUS);
	fputs("\nstarted ", out);
	store_text_time(out, st, RC_STARTED);
	fputs("  finished ", out);
	store_text_time(out, st, RC_FINISHED);
	fprintf(out, "\nfound %lld  archived %lld  already archived %lld  "
	    "failed %lld  bytes %lld\n",
	    (long long)sqlite3_column_int64(st, RC_FOUND),
	    (long long)sqlite3_column_int64(st, RC_ARCHIVED),
	    (long long)sqlite3_column_int64(st, RC_SKIPPED),
	    (long long)sqlite3_column_int64(st, RC_FAILED),
	    (long long)sqlite3_column_int64(st, RC_BYTES));
}

static int
store_print_folders(struct store *s, int64_t run, bool json, FILE *out)
{
	sqlite3_stmt *st;
	bool first = true;
	int r, rc;

	if ((r = store_prepare(s, "SELECT mailbox, folder, found, archived, "
	    "skipped, failed, bytes FROM run_folders WHERE run = ?1 "
	    "ORDER BY mailbox, folder", &st)) < 0)
		return r;
	if ((r = store_sqlite_errno(sqlite3_bind_int64(st, 1, run))) < 0)
		goto out;
	if (json)
		fputs(",\"folders\":[", out);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (json) {
			fputs(first ? "{" : ",{", out);
			store_json_kv_col(out, "mailbox", st, 0, true);
			store_json_kv_col(out, "folder", st, 1, false);
			putc(',', out);
			store_json_counts(out, st, 2);
			putc('}', out);
		} else {
			fputs("mailbox ", out);
			store_text_col(out, st, 0);
			fputs("  folder ", out);
			store_text_col(out, st, 1);
			fprintf(out, ": found %lld archived %lld skipped %lld "
			    "failed %lld bytes %lld\n",
			    (long long)sqlite3_column_int64(st, 2),
			    (long long)sqlite3_column_int64(st, 3),
			    (long long)sqlite3_column_int64(st, 4),
			    (long long)sqlite3_column_int64(st, 5),
			    (long long)sqlite3_column_int64(st, 6));
		}
		first = false;
	}
	r = store_step_end(rc);
	if (json)
		putc(']', out);
out:
	sqlite3_finalize(st);
	return r;
}

static void
store_event_line(FILE *out, sqlite3_stmt *st)
{
	fputs("  ", out);
	store_text_time(out, st, 0);
	putc(' ', out);
	store_text_pad(out, (const char *)sqlite3_column_text(st, 1), 8);
	if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
		store_text_col(out, st, 2);
		putc(' ', out);
	}
	if (sqlite3_column_type(st, 3) != SQLITE_NULL) {
		store_text_col(out, st, 3);
		putc(' ', out);
	}
	if (sqlite3_column_type(st, 4) != SQLITE_NULL)
		fprintf(out, "uid %lld ", (long long)sqlite3_column_int64(st, 4));
	store_text_col(out, st, 5);
	putc('\n', out);
}

static int
store_print_events(struct store *s, int64_t run, bool json, FILE *out)
{
	sqlite3_stmt *st;
	bool first = true;
	int r, rc;

	if ((r = store_prepare(s, "SELECT time, level, mailbox, folder, uid, "
	    "text FROM run_events WHERE run = ?1 ORDER BY id", &st)) < 0)
		return r;
	if ((r = store_sqlite_errno(sqlite3_bind_int64(st, 1, run))) < 0)
		goto out;
	fputs(json ? ",\"events\":[" : "events:\n", out);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (json) {
			fputs(first ? "{" : ",{", out);
			store_json_kv_time(out, "time", st, 0, true);
			store_json_kv_col(out, "level", st, 1, false);
			store_json_kv_col(out, "mailbox", st, 2, false);
			store_json_kv_col(out, "folder", st, 3, false);
			store_json_kv_col(out, "uid", st, 4, false);
			store_json_kv_col(out, "text", st, 5, false);
			putc('}', out);
		} else
			store_event_line(out, st);
		first = false;
	}
	r = store_step_end(rc);
	if (json)
		putc(']', out);
out:
	sqlite3_finalize(st);
	return r;
}

int
store_print_protocol(struct store *s, int64_t run, bool json, FILE *out)
{
	sqlite3_stmt *st;
	int r, rc;

	if ((r = store_prepare(s, "SELECT " RUN_COLS " FROM runs WHERE id = ?1",
	    &st)) < 0)
		return r;
	if ((r = store_sqlite_errno(sqlite3_bind_int64(st, 1, run))) < 0)
		goto out;
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		r = rc == SQLITE_DONE ? -ENOENT : store_sqlite_errno(rc);
		goto out;
	}
	if (json)
		store_json_run(out, st);
	else
		store_text_run(out, st);
	if ((r = store_print_folders(s, run, json, out)) == 0 &&
	    (r = store_print_events(s, run, json, out)) == 0 && json)
		fputs("}\n", out);
out:
	sqlite3_finalize(st);
	return store_print_done(out, r);
}

static void
store_text_runs_line(FILE *out, sqlite3_stmt *st)
{
	fprintf(out, "%-6lld  ", (long long)sqlite3_column_int64(st, RC_ID));
	store_text_time(out, st, RC_STARTED);
	fputs("  ", out);
	store_text_time(out, st, RC_FINISHED);
	if (sqlite3_column_type(st, RC_FINISHED) == SQLITE_NULL)
		fputs("                   ", out);
	fputs("  ", out);
	store_text_pad(out, (const char *)sqlite3_column_text(st, RC_STATUS),
	    21);
	fprintf(out, " %8lld %8lld %8lld %6lld %12lld  ",
	    (long long)sqlite3_column_int64(st, RC_FOUND),
	    (long long)sqlite3_column_int64(st, RC_ARCHIVED),
	    (long long)sqlite3_column_int64(st, RC_SKIPPED),
	    (long long)sqlite3_column_int64(st, RC_FAILED),
	    (long long)sqlite3_column_int64(st, RC_BYTES));
	store_text_col(out, st, RC_PROFILE);
	fputs("  ", out);
	store_text_col(out, st, RC_TRIGGER);
	putc('\n', out);
}

int
store_print_runs(struct store *s, const char *profile, bool json, FILE *out)
{
	sqlite3_stmt *st;
	bool first = true;
	int r, rc;

	if ((r = store_prepare(s, "SELECT " RUN_COLS " FROM runs WHERE "
	    "?1 IS NULL OR profile = ?1 ORDER BY id DESC", &st)) < 0)
		return r;
	if ((r = store_bind_text(st, 1, profile)) < 0)
		goto out;
	if (json)
		putc('[', out);
	else
		fprintf(out, "%-6s  %-20s  %-20s  %-21s %8s %8s %8s %6s %12s  "
		    "%s  %s\n", "RUN", "STARTED", "FINISHED", "STATUS", "FOUND",
		    "ARCHIVED", "SKIPPED", "FAILED", "BYTES", "PROFILE",
		    "TRIGGER");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (json) {
			if (!first)
				putc(',', out);
			store_json_run(out, st);
			putc('}', out);
		} else
			store_text_runs_line(out, st);
		first = false;
	}
	r = store_step_end(rc);
	if (json && r == 0)
		fputs("]\n", out);
out:
	sqlite3_finalize(st);
	return store_print_done(out, r);
}

enum { MC_ID, MC_HASH, MC_SIZE, MC_MSGID, MC_DATE, MC_FROM, MC_TO,
	MC_SUBJECT, MC_INTERNALDATE, MC_FIRST_RUN };

/* Locations of one message: JSON array, or text "folder:uid, ..." */
static int
store_print_locations(sqlite3_stmt *loc, int64_t id, bool json, FILE *out)
{
	bool first = true;
	int rc;

	sqlite3_reset(loc);
	if ((rc = sqlite3_bind_int64(loc, 1, id)) != SQLITE_OK)
		return store_sqlite_errno(rc);
	fputs(json ? ",\"locations\":[" : "(", out);
	while ((rc = sqlite3_step(loc)) == SQLITE_ROW) {
		if (json) {
			fputs(first ? "{" : ",{", out);
			store_json_kv_col(out, "profile", loc, 0, true);
			store_json_kv_col(out, "mailbox", loc, 1, false);
			store_json_kv_col(out, "folder", loc, 2, false);
			store_json_kv_col(out, "uidvalidity", loc, 3, false);
			store_json_kv_col(out, "uid", loc, 4, false);
			putc('}', out);
		} else {
			fputs(first ? "" : ", ", out);
			store_text_col(out, loc, 2);
			fprintf(out, ":%lld", (long long)sqlite3_column_int64(loc,
			    4));
		}
		first = false;
	}
	fputs(json ? "]" : ")", out);
	return store_step_end(rc);
}

static int
store_print_message(sqlite3_stmt *st, sqlite3_stmt *loc, bool json, FILE *out)
{
	int r;

	if (json) {
		putc('{', out);
		store_json_kv_col(out, "hash", st, MC_HASH, true);
		store_json_kv_col(out, "size", st, MC_SIZE, false);
		store_json_kv_col(out, "message_id", st, MC_MSGID, false);
		store_json_kv_col(out, "date", st, MC_DATE, false);
		store_json_kv_col(out, "from", st, MC_FROM, false);
		store_json_kv_col(out, "to", st, MC_TO, false);
		store_json_kv_col(out, "subject", st, MC_SUBJECT, false);
		store_json_kv_time(out, "internaldate", st, MC_INTERNALDATE,
		    false);
		store_json_kv_col(out, "first_run", st, MC_FIRST_RUN, false);
	} else {
		store_text_col(out, st, MC_HASH);
		fprintf(out, " %10lld  ", (long long)sqlite3_column_int64(st,
		    MC_SIZE));
		store_text_pad(out, (const char *)sqlite3_column_text(st,
		    MC_DATE), 31);
		fputs("  ", out);
		store_text_pad(out, (const char *)sqlite3_column_text(st,
		    MC_FROM), 30);
		fputs("  ", out);
		store_text_col(out, st, MC_SUBJECT);
		fputs("  ", out);
	}
	r = store_print_locations(loc, sqlite3_column_int64(st, MC_ID), json,
	    out);
	fputs(json ? "}" : "\n", out);
	return r;
}

int
store_print_messages(struct store *s, const char *archive_user,
    const char *folder, bool json, FILE *out)
{
	sqlite3_stmt *st = NULL, *loc = NULL;
	bool first = true;
	int r, rc;

	if ((r = store_prepare(s, "SELECT id, hash, size, message_id, date, "
	    "from_, to_, subject, internaldate, first_run FROM messages m "
	    "WHERE archive_user = ?1 AND (?2 IS NULL OR EXISTS (SELECT 1 "
	    "FROM locations l WHERE l.message = m.id AND l.folder = ?2)) "
	    "ORDER BY id", &st)) < 0 ||
	    (r = store_prepare(s, "SELECT profile, mailbox, folder, "
	    "uidvalidity, uid FROM locations WHERE message = ?1 "
	    "ORDER BY profile, mailbox, folder, uidvalidity, uid", &loc)) < 0 ||
	    (r = store_bind_text(st, 1, archive_user)) < 0 ||
	    (r = store_bind_text(st, 2, folder)) < 0)
		goto out;
	if (json)
		putc('[', out);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (json && !first)
			putc(',', out);
		if ((r = store_print_message(st, loc, json, out)) < 0)
			goto out;
		first = false;
	}
	if ((r = store_step_end(rc)) == 0 && json)
		fputs("]\n", out);
out:
	sqlite3_finalize(st);
	sqlite3_finalize(loc);
	return store_print_done(out, r);
}
