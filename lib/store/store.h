/*
 * store.h - the archive: content-addressed message files under
 * <root>/messages/ab/<sha256> (ab: the first byte of the hash; the 256
 * directories are made when the archive is) plus a SQLite index
 * (<root>/index.sqlite, WAL, migrations by PRAGMA user_version) and the
 * run protocol.  Archives of the older messages/ab/cd/<sha256> layout are
 * moved to this one by the first RDWR open.
 *
 * Durability contract (DESIGN.md rule 1): a message is archived only when
 * its file is fsynced, renamed into place, its directory fsynced, and THEN
 * its index row committed.  store_commit() does that for a batch (one
 * fsync per new file, one per distinct directory of the batch).  Files
 * without rows (a crash between the two steps) are harmless: the next
 * commit of the same bytes finds the file and adds the row.
 *
 * All functions are synchronous and may block on disk; a store handle is
 * used by one thread at a time.  One exception to "may block": a handle
 * that writes starts, at its first store_blob_begin(), a thread of its own
 * that keeps up to 32 temp files created and open in <root>/tmp, so that
 * beginning a message usually costs no file creation.  The end of the last
 * run open (store_run_finish) and store_close() remove the unused ones;
 * after a crash the next RDWR open does.  A handle used on an event loop
 * also gets a writer thread (store_writer_start) for messages' bytes.
 * Errors are -errno with a sentence in the caller's buffer where one is
 * taken.
 */
#ifndef MAILSTOW_STORE_H
#define MAILSTOW_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct store;
struct store_blob;

enum store_open_flags {
	STORE_RDWR = 0,		/* takes <root>/lock (flock, non-blocking),
				 * creates directories, migrates (schema
				 * and file layout), sweeps
				 * <root>/tmp and marks runs left "running"
				 * by a dead process as "interrupted" */
	STORE_RDONLY = 1,	/* no lock, no changes: for reading
				 * protocols while another process archives */
};

/*
 * Open (creating when RDWR) the archive at `root`.  -EBUSY when another
 * process holds the lock ("archive /x is in use by process N").
 */
int	store_open(const char *root, enum store_open_flags flags,
	    struct store **ret, char *err, size_t errlen);
void	store_close(struct store *);
/*
 * A second handle on an archive opened RDWR, for another thread (a commit
 * worker): its own SQLite connection, no lock of its own (the parent
 * holds it), and it commits blobs begun on the parent.  Close it before
 * the parent.
 */
int	store_clone(struct store *parent, struct store **ret, char *err,
	    size_t errlen);
const char *store_root(const struct store *);

/* ---- message files ---------------------------------------------------- */

/*
 * A message being received: bytes go to a temp file in <root>/tmp while
 * SHA-256 is computed.  The first bytes up to the end of the header (at
 * most 64 KiB) are also kept in memory for index fields.
 */
int	store_blob_begin(struct store *, struct store_blob **ret);
int	store_blob_write(struct store_blob *, const void *data, size_t len);
/*
 * No more writes.  The file is still a temp file.  With a writer thread
 * (below) the last bytes and the hash are finished there: errors of the
 * writing show at store_blob_settle().
 */
int	store_blob_end(struct store_blob *);
/*
 * After store_blob_end: wait until the bytes are written and hashed (at
 * once without a writer thread); 0 or the error of their writing.  Blocks
 * on the disk: never on the loop.  store_commit() does it.
 */
int	store_blob_settle(struct store_blob *);
/* Valid once settled without error (else NULL): raw SHA-256, its hex. */
const uint8_t *store_blob_hash(const struct store_blob *);
const char *store_blob_hex(const struct store_blob *);
uint64_t store_blob_size(const struct store_blob *);
/* The captured header bytes (borrowed, valid while the blob lives). */
const char *store_blob_header(const struct store_blob *, size_t *ret_len);
/* The captured header is not needed any more (its fields are read):
 * free it, so a blob waiting for its commit holds little memory. */
void	store_blob_drop_header(struct store_blob *);
/* Abandon: closes and unlinks the temp file.  NULL is fine. */
void	store_blob_free(struct store_blob *);

/*
 * A writer thread for a handle used on an event loop: store_blob_write()
 * then only copies bytes into 64 KiB chunks, and the thread writes and
 * hashes them.  Idempotent for the same base (-EINVAL for another one);
 * store_close() writes what is queued and ends the thread.
 *
 * Backpressure: after a write, a session asks store_writer_wait(); true
 * means the queue is over its mark and sw->cb(sw->arg) will be called on
 * the loop once it has drained, so the session should stop reading until
 * then.  store_writer_cancel() before freeing a listed waiter.
 */
struct event_base;
struct store_waiter {
	void	(*cb)(void *arg);
	void	*arg;
	struct store_waiter *next;	/* the store's */
	bool	 listed;		/* the store's */
};
int	store_writer_start(struct store *, struct event_base *);
bool	store_writer_wait(struct store *, struct store_waiter *);
void	store_writer_cancel(struct store *, struct store_waiter *);

/*
 * Path of the file for a 64-hex-digit hash: where it is, or where it
 * would be if it is not there.  On a RDONLY handle of an archive whose
 * move to the new layout has not finished, that may be the old place.
 * -EINVAL for a bad hash, -ERANGE when buf is too small.
 */
int	store_message_path(const struct store *, const char *hex, char *buf,
	    size_t buflen);

/* ---- committing messages ---------------------------------------------- */

struct store_msg {
	struct store_blob *blob;	/* ended; the commit takes ownership;
					 * entries of one batch may share a
					 * blob (one message, several users) */
	const char *archive_user;
	const char *profile, *mailbox, *folder;
	uint32_t uidvalidity, uid;	/* POP3: 0, 0 */
	const char *uidl;		/* POP3 UIDL, recorded as seen; or NULL */
	bool	 skipped;		/* seen, but filed for nobody (multidrop
					 * "skip"): remembered so it is not
					 * fetched again; archive_user unused */
	int64_t	 internaldate;		/* unix seconds; 0 unknown */
	const char *message_id, *date, *from, *to, *subject; /* may be NULL */
	int64_t	 run_id;
	/* out */
	bool	 duplicate;		/* archive_user already had these bytes */
};

/*
 * Make a batch durable (see contract above) in one transaction.  Every
 * msgs[i].blob is consumed whatever the result.  On success each
 * msgs[i].duplicate says whether it was new for its archive user; a
 * location row is recorded either way.  On failure (-EIO, -ENOSPC, ...)
 * nothing of the batch counts as archived and `err` says why.
 */
int	store_commit(struct store *, struct store_msg *msgs, size_t n,
	    char *err, size_t errlen);

/* ---- incremental state ------------------------------------------------ */

/*
 * UIDs recorded at (profile, mailbox, folder, uidvalidity), ascending.
 * *ret is malloc'ed (NULL when *ret_n is 0).
 */
int	store_known_uids(struct store *, const char *profile, const char *mailbox,
	    const char *folder, uint32_t uidvalidity, uint32_t **ret, size_t *ret_n);

/*
 * POP3: which of these n UIDLs were recorded (or skipped) at
 * (profile, mailbox)?
 * ret_known[i] is set for each.  0 or -errno.
 */
int	store_uidls_known(struct store *, const char *profile,
	    const char *mailbox, const char *const *uidls, size_t n,
	    bool *ret_known);

struct store_folder_state {
	uint32_t uidvalidity, uidnext, messages;
	uint64_t highestmodseq;
};
/* 0 and *ret, or -ENOENT when the folder was never completed. */
int	store_folder_state_get(struct store *, const char *profile,
	    const char *mailbox, const char *folder, struct store_folder_state *ret);
/* Record that every message of the folder up to this state is archived. */
int	store_folder_state_set(struct store *, const char *profile,
	    const char *mailbox, const char *folder,
	    const struct store_folder_state *);

/* ---- the protocol ----------------------------------------------------- */

struct store_counts {
	uint64_t found, archived, skipped, failed, bytes;
};

enum store_level { STORE_INFO, STORE_WARNING, STORE_ERROR };

int	store_run_begin(struct store *, const char *profile, const char *trigger,
	    int64_t *ret_run_id);
/* An event; mailbox/folder may be NULL, uid 0 means none.  Text is stored
 * as given (callers escape server text first). */
int	store_run_event(struct store *, int64_t run, enum store_level,
	    const char *mailbox, const char *folder, uint32_t uid, const char *text);
/* Per-folder counts (insert or replace). */
int	store_run_folder(struct store *, int64_t run, const char *mailbox,
	    const char *folder, const struct store_counts *);
/* status: "succeeded", "completed_with_errors", "failed", "interrupted".
 * Ending the last run open on an archive (its handle or a clone) removes
 * the spare temp files (see the top), on the calling thread. */
int	store_run_finish(struct store *, int64_t run, const char *status,
	    const struct store_counts *);

/* ---- reading, for the CLI --------------------------------------------- */

/* Newest run id of `profile`, -ENOENT if none. */
int	store_last_run(struct store *, const char *profile, int64_t *ret);

/* What a scheduler needs of a profile's newest run. */
struct store_run_info {
	int64_t	 id;
	int64_t	 started, finished;	/* unix seconds; finished 0: still
					 * "running" (or killed) */
	char	 status[32];
};

/* The newest run of `profile`: 0, -ENOENT if none, or -errno. */
int	store_last_run_info(struct store *, const char *profile,
	    struct store_run_info *ret);

/*
 * Print one run.  JSON: one object {"run","profile","trigger","status",
 * "started","finished","counts":{found,archived,skipped,failed,bytes},
 * "folders":[{"mailbox","folder",found,archived,skipped,failed,bytes}],
 * "events":[{"time","level","mailbox","folder","uid","text"}]}; times are
 * ISO 8601 UTC, absent values null.  Text: a readable report.
 * -ENOENT when there is no such run.
 */
int	store_print_protocol(struct store *, int64_t run, bool json, FILE *out);
/* Runs, newest first; profile NULL for all.  JSON: an array of the run
 * objects above without "folders" and "events". */
int	store_print_runs(struct store *, const char *profile, bool json, FILE *out);
/* Messages of an archive user (folder NULL for all).  JSON: an array of
 * {"hash","size","message_id","date","from","to","subject","internaldate",
 * "first_run","locations":[{"profile","mailbox","folder","uidvalidity","uid"}]}. */
int	store_print_messages(struct store *, const char *archive_user,
	    const char *folder, bool json, FILE *out);

#endif
