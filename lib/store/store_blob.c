/*
 * store_blob.c - one message on its way into the archive: its bytes
 * stream into a temp file under <root>/tmp while SHA-256 runs over them,
 * and the header (up to the first empty line, at most 64 KiB) is kept in
 * memory for the index fields.  With a writer thread (store_writer.c) the
 * bytes leave in chunks and this file only fills them.
 */
#define _GNU_SOURCE	/* sync_file_range() */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "store_private.h"

/*
 * The temp file: a spare made ahead by the spare thread when there is one
 * (creating a file can block, and this runs on the event loop).  Else the
 * writer thread makes it with the first bytes (store_blob_need_file);
 * without a writer it is made here and now, which also reports the error
 * if creating files fails.
 */
static int
store_blob_mktemp(struct store_blob *b)
{
	struct store *s = b->store;

	if (store_spare_take(s, &b->fd, b->tmpname, sizeof b->tmpname) == 0) {
		b->tmp_exists = true;
		return 0;
	}
	if (b->writer != NULL)
		return 0;
	return store_blob_need_file(b);
}

int
store_blob_need_file(struct store_blob *b)
{
	int r;

	if (b->fd >= 0)
		return 0;
	if ((r = store_tmp_create(b->store, &b->fd, b->tmpname,
	    sizeof b->tmpname)) < 0)
		return r;
	b->tmp_exists = true;
	return 0;
}

int
store_blob_begin(struct store *s, struct store_blob **ret)
{
	struct store_blob *b;
	int r;

	if ((r = store_check_writable(s)) < 0)
		return r;
	if ((b = calloc(1, sizeof *b)) == NULL)
		return -ENOMEM;
	b->store = s;
	b->writer = s->writer;
	b->fd = -1;
	if ((b->md = EVP_MD_CTX_new()) == NULL) {
		r = -ENOMEM;
		goto fail;
	}
	if (EVP_DigestInit_ex(b->md, EVP_sha256(), NULL) != 1) {
		r = -EIO;
		goto fail;
	}
	if ((r = store_blob_mktemp(b)) < 0)
		goto fail;
	*ret = b;
	return 0;
fail:
	store_blob_free(b);
	return r;
}

static bool
store_header_ended(const struct store_blob *b)
{
	const char *h = b->header;
	size_t n = b->header_len;

	/* "\n\n" ends an LF header, "\n\r\n" (of "\r\n\r\n") a CRLF one. */
	return (n >= 2 && h[n - 1] == '\n' && h[n - 2] == '\n') ||
	    (n >= 3 && h[n - 1] == '\n' && h[n - 2] == '\r' && h[n - 3] == '\n');
}

static int
store_header_grow(struct store_blob *b, size_t want)
{
	size_t cap;
	char *p;

	if (want <= b->header_cap)
		return 0;
	cap = b->header_cap == 0 ? 4096 : b->header_cap * 2;
	if (cap < want)
		cap = want;
	if (cap > STORE_HEADER_MAX)
		cap = STORE_HEADER_MAX;
	if ((p = realloc(b->header, cap + 1)) == NULL)
		return -ENOMEM;
	b->header = p;
	b->header_cap = cap;
	return 0;
}

static int
store_header_capture(struct store_blob *b, const char *p, size_t len)
{
	size_t i, take;
	int r;

	if (b->header_done)
		return 0;
	take = STORE_HEADER_MAX - b->header_len;
	if (take > len)
		take = len;
	if ((r = store_header_grow(b, b->header_len + take)) < 0)
		return r;
	for (i = 0; i < take; i++) {
		b->header[b->header_len++] = p[i];
		if (p[i] == '\n' && store_header_ended(b)) {
			b->header_done = true;
			break;
		}
	}
	if (b->header_len == STORE_HEADER_MAX)
		b->header_done = true;
	b->header[b->header_len] = '\0';
	return 0;
}

static int
store_write_all(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Where the bytes are written: on the writer thread, or here without one. */
int
store_blob_out(struct store_blob *b, const char *p, size_t len)
{
	int r;

	if ((r = store_write_all(b->fd, p, len)) < 0)
		return r;
	if (EVP_DigestUpdate(b->md, p, len) != 1)
		return -EIO;
	return 0;
}

/*
 * The last bytes are out: finish the hash, start writing the file out, so
 * the fsync of the commit finds little left to do, and give the
 * descriptor back, so that a commit group costs no open files however
 * large it grows.
 */
int
store_blob_finish(struct store_blob *b)
{
	unsigned int n = 0;
	int r = 0;

	if (EVP_DigestFinal_ex(b->md, b->hash, &n) != 1 || n != STORE_HASH_LEN)
		r = -EIO;
	else
		hex_encode(b->hash, STORE_HASH_LEN, b->hex);
	(void)sync_file_range(b->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	store_blob_close_fd(b);
	return r;
}

/*
 * A full chunk leaves: to the writer thread when the store has one, else
 * written here.  Bytes reach the file in whole STORE_BLOB_CHUNKs (the last
 * one excepted): a write that ends inside a page of a new file makes ext4
 * zero the rest of the page first, which cost the loop thread more than a
 * quarter of its time with the small pieces TLS records arrive in.
 */
static int
store_blob_flush(struct store_blob *b)
{
	int r;

	if (b->buf_len == 0)
		return 0;
	if (b->writer == NULL) {
		if ((r = store_blob_out(b, b->buf, b->buf_len)) < 0)
			return r;
		b->buf_len = 0;
		return 0;
	}
	if ((r = store_writer_queue(b, b->buf, b->buf_len)) < 0)
		return r;
	b->buf = NULL;
	b->buf_len = b->buf_cap = 0;
	return 0;
}

/*
 * The chunk being filled starts small and doubles up to STORE_BLOB_CHUNK:
 * most messages are a few KiB, and each waits in the writer's queue in a
 * buffer about its own size.
 */
static int
store_blob_grow(struct store_blob *b, size_t want)
{
	size_t cap = b->buf_cap == 0 ? STORE_BLOB_FIRST : b->buf_cap;
	char *p;

	while (cap < want && cap < STORE_BLOB_CHUNK)
		cap *= 2;
	if (cap > STORE_BLOB_CHUNK)
		cap = STORE_BLOB_CHUNK;
	if (cap == b->buf_cap)
		return 0;
	if ((p = realloc(b->buf, cap)) == NULL)
		return -ENOMEM;
	b->buf = p;
	b->buf_cap = cap;
	return 0;
}

static int
store_blob_buffer(struct store_blob *b, const char *p, size_t len)
{
	size_t take;
	int r;

	while (len > 0) {
		if ((r = store_blob_grow(b, b->buf_len + len)) < 0)
			return r;
		take = b->buf_cap - b->buf_len;
		if (take > len)
			take = len;
		memcpy(b->buf + b->buf_len, p, take);
		b->buf_len += take;
		if (b->buf_len == STORE_BLOB_CHUNK &&
		    (r = store_blob_flush(b)) < 0)
			return r;
		p += take;
		len -= take;
	}
	return 0;
}

int
store_blob_write(struct store_blob *b, const void *data, size_t len)
{
	int r;

	if (b->ended)
		return -EINVAL;
	if (b->error != 0)
		return b->error;
	if (len == 0)
		return 0;
	if ((r = store_header_capture(b, data, len)) < 0 ||
	    (r = store_blob_buffer(b, data, len)) < 0) {
		/* A blob that missed bytes must never be committed. */
		b->error = r;
		return r;
	}
	b->size += len;
	return 0;
}

int
store_blob_end(struct store_blob *b)
{
	int r;

	if (b->ended)
		return -EINVAL;
	if (b->error != 0)
		return b->error;
	if ((r = store_blob_flush(b)) < 0)
		return b->error = r;
	free(b->buf);
	b->buf = NULL;
	b->buf_cap = 0;
	if (b->writer != NULL) {
		/* The end, queued like a chunk: the thread finishes it. */
		if ((r = store_writer_queue(b, NULL, 0)) < 0)
			return b->error = r;
	} else {
		if ((r = store_blob_finish(b)) < 0)
			return b->error = r;
		b->settled = true;
	}
	b->ended = true;
	return 0;
}

int
store_blob_settle(struct store_blob *b)
{
	if (!b->ended)
		return -EINVAL;
	return store_writer_settle(b);
}

const uint8_t *
store_blob_hash(const struct store_blob *b)
{
	return b->ended && b->settled && b->werror == 0 ? b->hash : NULL;
}

const char *
store_blob_hex(const struct store_blob *b)
{
	return b->ended && b->settled && b->werror == 0 ? b->hex : NULL;
}

uint64_t
store_blob_size(const struct store_blob *b)
{
	return b->size;
}

const char *
store_blob_header(const struct store_blob *b, size_t *ret_len)
{
	*ret_len = b->header_len;
	return b->header != NULL ? b->header : "";
}

void
store_blob_drop_header(struct store_blob *b)
{
	free(b->header);
	b->header = NULL;
	b->header_len = b->header_cap = 0;
	b->header_done = true;
}

void
store_blob_close_fd(struct store_blob *b)
{
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
}

void
store_blob_destroy(struct store_blob *b)
{
	store_blob_close_fd(b);
	if (b->tmp_exists)
		unlinkat(b->store->tmpfd, b->tmpname, 0);
	EVP_MD_CTX_free(b->md);
	free(b->header);
	free(b->buf);
	free(b);
}

void
store_blob_free(struct store_blob *b)
{
	if (b == NULL)
		return;
	/* Chunks still queued: the writer thread frees it after the last. */
	if (!store_writer_orphan(b))
		store_blob_destroy(b);
}
