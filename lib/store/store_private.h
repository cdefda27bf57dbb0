/*
 * store_private.h - what the files of lib/store share: the handle, the
 * blob, the SQLite helpers, and a fault hook that tests use to make
 * fsync() and renameat() fail.  Nothing outside lib/store and its unit
 * test includes this header.
 */
#ifndef MAILSTOW_STORE_PRIVATE_H
#define MAILSTOW_STORE_PRIVATE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "store.h"

#define STORE_HASH_LEN		32
#define STORE_HEX_LEN		(2 * STORE_HASH_LEN)
#define STORE_HEADER_MAX	(64 * 1024)
#define STORE_DIR_MODE		0750
#define STORE_FILE_MODE		0640
#define STORE_BUSY_MS		5000
#define STORE_FANOUT		256	/* messages/00 .. messages/ff */
#define STORE_SCHEMA_LAYOUT	3	/* the first with meta('layout') */
#define STORE_TMPNAME_LEN	64	/* "<pid>-<seq>.tmp" and its NUL */
#define STORE_BLOB_CHUNK	(64 * 1024) /* bytes written at once */
#define STORE_BLOB_FIRST	(4 * 1024)  /* first size of a chunk buffer */
/* Bytes queued for the writer thread at which sessions wait, and at which
 * they go on again: the memory the queue may hold. */
#define STORE_WRITER_HIGH	(4u * 1024 * 1024)
#define STORE_WRITER_LOW	(2u * 1024 * 1024)
/*
 * Temp files kept created and open ahead of need (store_spare.c): at most
 * this many per writing handle, and at most 1/32 of RLIMIT_NOFILE, since
 * each is an open descriptor (32 with the usual limit of 1024).
 */
#define STORE_TMP_SPARES	32

/*
 * Where message files live, recorded in meta('layout').  An archive of
 * schema 2 or older has no meta table and is STORE_LAYOUT_AB_CD.
 */
enum store_layout {
	STORE_LAYOUT_AB_CD = 1,		/* messages/ab/cd/<sha256> */
	STORE_LAYOUT_AB = 2,		/* messages/ab/<sha256> */
};

/*
 * Test hook: when a function is set it replaces the system call for this
 * handle only (no process-wide state).  A hook returns 0 or -1 with errno
 * set, like the call it replaces.
 */
struct store_fault {
	int	(*fsync)(int fd, void *arg);
	int	(*renameat)(int olddirfd, const char *oldpath, int newdirfd,
		    const char *newpath, void *arg);
	void	*arg;
};

struct store {
	char		*root;
	bool		 rdonly;
	int		 rootfd;	/* <root>, O_DIRECTORY */
	int		 tmpfd;		/* <root>/tmp; -1 when RDONLY */
	int		 msgfd;		/* <root>/messages; -1 when RDONLY */
	int		 lockfd;	/* <root>/lock, flock'ed; -1 when RDONLY */
	enum store_layout layout;	/* RDWR: always AB once open */
	uint64_t	 tmpseq;	/* part of temp file names; atomic: the
					 * spare thread takes numbers too */
	long		 pid;		/* and getpid() of the open, asked once */
	struct store_spares *spares;	/* temp files made ahead; NULL until
					 * the first store_blob_begin() */
	bool		 spares_off;	/* no spares: the thread cannot start */
	int		 runs_open;	/* runs begun, not ended (atomic; on
					 * the handle that owns the spares) */
	sqlite3		*db;
	struct store_fault fault;
	struct store	*parent;	/* a clone: whose blobs it commits */
	struct store_writer *writer;	/* writes blobs' bytes for the loop;
					 * NULL: store_blob_write() does */
};

struct store_blob {
	struct store	*store;
	int		 fd;		/* temp file; -1 once closed */
	char		 tmpname[STORE_TMPNAME_LEN]; /* relative to tmpfd */
	bool		 tmp_exists;	/* unlink it when freed */
	bool		 ended;
	int		 error;		/* first write error, sticky */
	EVP_MD_CTX	*md;
	uint64_t	 size;
	uint8_t		 hash[STORE_HASH_LEN];
	char		 hex[STORE_HEX_LEN + 1];
	char		*header;	/* up to STORE_HEADER_MAX bytes */
	size_t		 header_len, header_cap;
	bool		 header_done;
	char		*buf;		/* bytes not yet written or queued */
	size_t		 buf_len, buf_cap; /* cap: up to STORE_BLOB_CHUNK */
	/*
	 * With a writer thread, under its mutex: fd, tmpname, tmp_exists,
	 * md, hash and hex are the thread's from the first chunk queued
	 * until settled.
	 */
	struct store_writer *writer;	/* the store's at begin, for good */
	unsigned	 pending;	/* chunks (and the end) queued and
					 * not yet written */
	bool		 settled;	/* the end is handled: hash, fd closed */
	bool		 orphan;	/* freed by its owner; the thread frees
					 * it after its last chunk */
	int		 werror;	/* the thread's first write error */
};

/*
 * Run fn(ctx, 0..n-1) on a few threads (serially under a fault hook);
 * 0, or the failure of the lowest failing index, stored in *ret_fail.
 */
int	store_parallel(const struct store *, size_t n,
	    int (*fn)(void *ctx, size_t i), void *ctx, size_t *ret_fail);

/* Install (or with NULL, remove) the fault hook of one handle. */
void	store_test_set_fault(struct store *, const struct store_fault *);
/* store_open() with the fault hook installed from the start (NULL: none),
 * so that tests can break what open does: the layout migration. */
int	store_test_open(const char *root, enum store_open_flags,
	    const struct store_fault *, struct store **ret, char *err,
	    size_t errlen);

/* ---- store_spare.c ---------------------------------------------------- */

/*
 * Create a new temp file <pid>-<seq>.tmp in tmp/ (O_EXCL, mode
 * STORE_FILE_MODE whatever the umask): its descriptor and name.  Blocks
 * on the disk; callable from any thread.
 */
int	store_tmp_create(struct store *, int *ret_fd, char *name, size_t len);
/*
 * A temp file made ahead by the spare thread (started here on the first
 * call), without waiting: -EAGAIN when the pool is empty, -ENOENT when the
 * handle has no spare thread.  The caller then uses store_tmp_create().
 */
int	store_spare_take(struct store *, int *ret_fd, char *name, size_t len);
/* Stop and join the thread; close and unlink the unused spares. */
void	store_spares_stop(struct store *);
/*
 * A run began, or ended, on this handle or a clone of it.  When the last
 * one open ends, the pool is emptied (its files unlinked) and the thread
 * rests until the next store_blob_begin().  Any thread.
 */
void	store_spares_run_begun(struct store *);
void	store_spares_run_ended(struct store *);

struct store_spares_stat {
	bool	 started;	/* a thread runs for this handle */
	bool	 settled;	/* it sleeps and will make no file unwoken */
	size_t	 n, cap;	/* spares ready, pool size */
	unsigned errors;	/* failed creations */
};
/* Test hook: wait (bounded) until the thread sleeps, then report. */
void	store_test_spares(struct store *, struct store_spares_stat *ret);
/* Test hook: while held, the thread makes no files. */
void	store_test_spares_hold(struct store *, bool hold);

/* ---- store_blob.c / store_writer.c ------------------------------------ */

/* Write and hash bytes of a blob, in order; finish its hash and close its
 * file; free it (closing and unlinking the temp file).  Any one thread. */
int	store_blob_out(struct store_blob *, const char *p, size_t len);
/* Create the blob's temp file if it has none yet. */
int	store_blob_need_file(struct store_blob *);
int	store_blob_finish(struct store_blob *);
void	store_blob_destroy(struct store_blob *);

/* Queue a chunk (malloc'd, the thread frees it), or with NULL the end. */
int	store_writer_queue(struct store_blob *, char *data, size_t len);
/* Wait until the blob's end is handled; its error. */
int	store_writer_settle(struct store_blob *);
/* true: chunks are queued, and the thread frees the blob after them. */
bool	store_writer_orphan(struct store_blob *);
/* Write what is queued, then end the thread. */
void	store_writer_stop(struct store *);
/* Test hooks: while held the thread writes nothing (store_writer_stop
 * still writes all); the bytes queued and not yet handed back. */
void	store_test_writer_hold(struct store *, bool hold);
size_t	store_test_writer_queued(const struct store *);

/* ---- store_layout.c ---------------------------------------------------- */

/* Record layout `l` in meta, inside the caller's transaction. */
int	store_layout_set(struct store *, enum store_layout l);
/* Read the recorded layout into s->layout (AB_CD for an index of
 * `schema` < STORE_SCHEMA_LAYOUT, which has no meta table). */
int	store_layout_read(struct store *, int schema, char *err, size_t errlen);
/*
 * RDWR open, under the lock, schema current: make the 256 fan-out
 * directories that are missing (fsynced, with messages/), then move the
 * files of an AB_CD archive into place and record AB.  Idempotent: after
 * a crash it picks up where it stopped.
 */
int	store_layout_open(struct store *, char *err, size_t errlen);
/*
 * Make messages/<name> (one fan-out directory) if it is missing, and its
 * entry durable; a directory whose entry could not be synced is removed
 * again, so the next try creates and syncs it anew.
 */
int	store_layout_mkdir(struct store *, const char *name);
/* fsync messages/<ab>, the fan-out directory of first hash byte ab. */
int	store_layout_sync_dir(struct store *, unsigned ab);

/* fsync() and renameat() through the fault hook. */
int	store_fsync(struct store *, int fd);
int	store_renameat(struct store *, int olddirfd, const char *oldpath,
	    int newdirfd, const char *newpath);

/* Closes the temp file descriptor (after the commit fsynced it). */
void	store_blob_close_fd(struct store_blob *);

/* Format into err (NULL or errlen 0 is fine); returns `code`. */
int	store_seterr(char *err, size_t errlen, int code, const char *fmt, ...)
	    __attribute__((format(printf, 4, 5)));

/* -errno for a SQLite result code. */
int	store_sqlite_errno(int rc);
/* Prepare `sql`; -errno on failure (the text goes to debug log). */
int	store_prepare(struct store *, const char *sql, sqlite3_stmt **ret);
/* Run one parameterless statement (BEGIN, COMMIT, ROLLBACK, DDL). */
int	store_exec(struct store *, const char *sql);
/* Bind text, or NULL when s is NULL. */
int	store_bind_text(sqlite3_stmt *, int idx, const char *s);
/* Step a statement that returns no row; -errno unless SQLITE_DONE. */
int	store_step_done(struct store *, sqlite3_stmt *);
/* Reject writes on a read-only handle. */
int	store_check_writable(const struct store *);
int64_t	store_now(void);

/* Output helpers (store_json.c).  Strings may hold any bytes. */
size_t	store_utf8_len(const unsigned char *p, size_t n);
void	store_json_str(FILE *, const char *s);
void	store_json_kv_int(FILE *, const char *key, int64_t v, bool first);
void	store_json_kv_time(FILE *, const char *key, sqlite3_stmt *, int col,
	    bool first);
void	store_json_kv_col(FILE *, const char *key, sqlite3_stmt *, int col,
	    bool first);
size_t	store_text_str(FILE *, const char *s);
void	store_text_col(FILE *, sqlite3_stmt *, int col);
void	store_text_time(FILE *, sqlite3_stmt *, int col);

#endif
