/*
 * test_store_writer.c - message bytes written by the store's writer
 * thread: the file and hash are exact whatever the pieces, a waiter is
 * told to stop when the queue is over its mark and called back on the
 * loop when it drained, a blob given up while queued leaves no file, and
 * a failed write shows at settle and fails the commit, losing nothing,
 * and with no spare temp file ready the thread makes the file, not the
 * loop.
 */
#define _GNU_SOURCE	/* nftw() */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "store/store.h"
#include "store/store_private.h"

#define STORE_FX_TAG	"writer"
#include "store_fixture.h"

/* Deterministic bytes that are not all alike. */
static char *
make_data(size_t len)
{
	char *d = malloc(len);
	size_t i;

	assert_non_null(d);
	for (i = 0; i < len; i++)
		d[i] = (char)("From: a@b\r\n\r\nbody"[i % 17] + i / 251);
	return d;
}

static void
write_pieces(struct store_blob *b, const char *d, size_t len)
{
	static const size_t piece[] = { 1, 7, 4093, 65536, 3, 131072, 70001 };
	size_t off = 0, k = 0, n;

	while (off < len) {
		n = piece[k++ % (sizeof piece / sizeof piece[0])];
		if (n > len - off)
			n = len - off;
		assert_int_equal(store_blob_write(b, d + off, n), 0);
		off += n;
	}
}

static void
read_file(const char *path, char **ret, size_t *ret_len)
{
	struct stat st;
	char *d;
	int fd;

	assert_true((fd = open(path, O_RDONLY)) >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_non_null(d = malloc((size_t)st.st_size + 1));
	assert_int_equal(read(fd, d, (size_t)st.st_size), st.st_size);
	close(fd);
	*ret = d;
	*ret_len = (size_t)st.st_size;
}

static void
test_bytes_and_hash_exact(void **state)
{
	struct fx *fx = *state;
	struct event_base *base = event_base_new();
	struct store *s = open_rw(fx);
	size_t len = 3 * STORE_BLOB_CHUNK + 12345, got_len;
	char *d = make_data(len), *got, hex[65], path[512];
	struct store_blob *b;
	struct store_msg m;

	assert_int_equal(store_writer_start(s, base), 0);
	assert_int_equal(store_writer_start(s, base), 0);
	assert_int_equal(store_blob_begin(s, &b), 0);
	write_pieces(b, d, len);
	assert_int_equal(store_blob_end(b), 0);
	assert_int_equal(store_blob_size(b), len);
	assert_int_equal(store_blob_settle(b), 0);
	sha256_hex(d, len, hex);
	assert_string_equal(store_blob_hex(b), hex);
	m = msg(b, "u", "INBOX", 1);
	assert_int_equal(store_commit(s, &m, 1, fx->err, sizeof fx->err), 0);
	assert_int_equal(store_message_path(s, hex, path, sizeof path), 0);
	read_file(path, &got, &got_len);
	assert_int_equal(got_len, len);
	assert_memory_equal(got, d, len);
	free(got);
	free(d);
	store_close(s);
	event_base_free(base);
}

static void
drained(void *arg)
{
	(*(int *)arg)++;
}

static void
test_waiter_told_and_called_back(void **state)
{
	struct fx *fx = *state;
	struct event_base *base = event_base_new();
	struct store *s = open_rw(fx);
	size_t len = STORE_WRITER_HIGH + 4 * STORE_BLOB_CHUNK;
	char *d = make_data(len);
	struct store_blob *b;
	int called = 0, other_called = 0;
	struct store_waiter sw = { .cb = drained, .arg = &called };
	struct store_waiter other = { .cb = drained, .arg = &other_called };

	assert_int_equal(store_writer_start(s, base), 0);
	assert_false(store_writer_wait(s, &sw));
	store_test_writer_hold(s, true);
	assert_int_equal(store_blob_begin(s, &b), 0);
	write_pieces(b, d, len);
	assert_true(store_test_writer_queued(s) > STORE_WRITER_HIGH);
	assert_true(store_writer_wait(s, &sw));
	assert_true(store_writer_wait(s, &sw));	/* listed once */
	assert_true(store_writer_wait(s, &other));
	store_writer_cancel(s, &other);
	/* Nothing drained yet: the loop has nothing to call. */
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(called, 0);
	store_test_writer_hold(s, false);
	while (called == 0)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(called, 1);
	assert_int_equal(other_called, 0);
	assert_false(sw.listed);
	assert_true(store_test_writer_queued(s) <= STORE_WRITER_LOW);
	assert_int_equal(store_blob_end(b), 0);
	assert_int_equal(store_blob_settle(b), 0);
	store_blob_free(b);
	free(d);
	store_close(s);
	event_base_free(base);
}

static void
test_given_up_while_queued(void **state)
{
	struct fx *fx = *state;
	struct event_base *base = event_base_new();
	struct store *s = open_rw(fx);
	size_t len = 5 * STORE_BLOB_CHUNK;
	char *d = make_data(len);
	struct store_blob *b, *b2;

	char name[STORE_TMPNAME_LEN], name2[STORE_TMPNAME_LEN];

	assert_int_equal(store_writer_start(s, base), 0);
	assert_int_equal(store_blob_begin(s, &b), 0);
	assert_int_equal(store_blob_begin(s, &b2), 0);
	assert_int_equal(store_blob_need_file(b), 0);
	assert_int_equal(store_blob_need_file(b2), 0);
	snprintf(name, sizeof name, "%s", b->tmpname);
	snprintf(name2, sizeof name2, "%s", b2->tmpname);
	store_test_writer_hold(s, true);
	write_pieces(b, d, len);
	write_pieces(b2, d, len);
	assert_int_equal(store_blob_end(b2), 0);
	/* Both freed with chunks (and an end) queued: they live on until
	 * the thread has written their last chunk, under ASan with no use
	 * after free, and their files go with them. */
	store_blob_free(b);
	store_blob_free(b2);
	assert_true(tmp_has(fx, name) && tmp_has(fx, name2));
	store_test_writer_hold(s, false);
	while (store_test_writer_queued(s) > 0)
		event_base_loop(base, EVLOOP_ONCE);
	assert_false(tmp_has(fx, name));
	assert_false(tmp_has(fx, name2));
	store_close(s);
	assert_int_equal(tmp_entries(fx), 0);
	free(d);
	event_base_free(base);
}

static void
test_write_error_fails_commit(void **state)
{
	struct fx *fx = *state;
	struct event_base *base = event_base_new();
	struct store *s = open_rw(fx);
	size_t len = 2 * STORE_BLOB_CHUNK + 5;
	char *d = make_data(len);
	struct store_blob *b;
	struct store_msg m;
	uint32_t *uids = NULL;
	size_t n = 1;
	int fd;

	assert_int_equal(store_writer_start(s, base), 0);
	assert_int_equal(store_blob_begin(s, &b), 0);
	assert_int_equal(store_blob_need_file(b), 0);
	/* A descriptor that cannot be written: every write() fails EBADF. */
	assert_true((fd = open("/dev/null", O_RDONLY)) >= 0);
	assert_true(dup2(fd, b->fd) >= 0);
	close(fd);
	/* Held: the error is not known before the end, only at settle. */
	store_test_writer_hold(s, true);
	write_pieces(b, d, len);
	assert_int_equal(store_blob_end(b), 0);
	store_test_writer_hold(s, false);
	assert_int_equal(store_blob_settle(b), -EBADF);
	assert_null(store_blob_hex(b));
	m = msg(b, "u", "INBOX", 1);
	assert_int_equal(store_commit(s, &m, 1, fx->err, sizeof fx->err),
	    -EBADF);
	assert_non_null(strstr(fx->err, "Bad file descriptor"));
	assert_non_null(strstr(fx->err, "/tmp/"));
	/* Not indexed: the next run fetches it again. */
	assert_int_equal(store_known_uids(s, "u", "u", "INBOX", 100, &uids,
	    &n), 0);
	assert_int_equal(n, 0);
	free(uids);
	store_close(s);
	assert_int_equal(tmp_entries(fx), 0);
	free(d);
	event_base_free(base);
}

static void
test_empty_pool_file_made_by_writer(void **state)
{
	struct fx *fx = *state;
	struct event_base *base = event_base_new();
	struct store *s = open_rw(fx);
	struct store_blob *b[STORE_TMP_SPARES + 2];
	struct store_spares_stat st;
	const char *text = "Subject: late\r\n\r\nbody\r\n";
	char hex[65];
	int i, before;

	assert_int_equal(store_writer_start(s, base), 0);
	assert_int_equal(store_blob_begin(s, &b[0]), 0);
	store_test_spares(s, &st);
	assert_int_equal(st.n, STORE_TMP_SPARES);
	store_test_spares_hold(s, true);
	for (i = 1; i <= STORE_TMP_SPARES; i++)
		assert_int_equal(store_blob_begin(s, &b[i]), 0);
	before = tmp_entries(fx);
	/* The pool is empty: the loop makes no file for this one. */
	assert_int_equal(store_blob_begin(s, &b[i]), 0);
	assert_int_equal(b[i]->fd, -1);
	assert_int_equal(tmp_entries(fx), before);
	assert_int_equal(store_blob_write(b[i], text, strlen(text)), 0);
	assert_int_equal(store_blob_end(b[i]), 0);
	assert_int_equal(store_blob_settle(b[i]), 0);
	assert_true(b[i]->tmp_exists);
	assert_int_equal(tmp_entries(fx), before + 1);
	sha256_hex(text, strlen(text), hex);
	assert_string_equal(store_blob_hex(b[i]), hex);
	store_test_spares_hold(s, false);
	for (i = 0; i <= STORE_TMP_SPARES + 1; i++)
		store_blob_free(b[i]);
	store_close(s);
	assert_int_equal(tmp_entries(fx), 0);
	event_base_free(base);
}

static void
test_without_writer_settled_at_end(void **state)
{
	struct fx *fx = *state;
	struct store *s = open_rw(fx);
	char hex[65];
	struct store_blob *b = make_blob(s, "Subject: x\r\n\r\nbody\r\n");

	sha256_hex("Subject: x\r\n\r\nbody\r\n", 20, hex);
	assert_string_equal(store_blob_hex(b), hex);
	assert_int_equal(store_blob_settle(b), 0);
	store_blob_free(b);
	store_close(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bytes_and_hash_exact,
		    store_fx_setup, store_fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_waiter_told_and_called_back, store_fx_setup,
		    store_fx_teardown),
		cmocka_unit_test_setup_teardown(test_given_up_while_queued,
		    store_fx_setup, store_fx_teardown),
		cmocka_unit_test_setup_teardown(test_write_error_fails_commit,
		    store_fx_setup, store_fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_empty_pool_file_made_by_writer, store_fx_setup,
		    store_fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_without_writer_settled_at_end, store_fx_setup,
		    store_fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
