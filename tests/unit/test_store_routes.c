/*
 * test_store_routes.c - the store for POP3 and multidrop: a committed
 * message's UIDL is seen in the same transaction, per (profile, mailbox);
 * one blob filed under several archive users is stored once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store.h"

static char root[64];

static int
setup(void **state)
{
	struct store *s;
	char err[256];

	snprintf(root, sizeof root, "/tmp/mailstow-pop3-XXXXXX");
	assert_non_null(mkdtemp(root));
	assert_int_equal(store_open(root, STORE_RDWR, &s, err, sizeof err), 0);
	*state = s;
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	store_close(*state);
	snprintf(cmd, sizeof cmd, "rm -rf %s", root);
	return system(cmd);
}

static struct store_blob *
blob(struct store *s, const char *text)
{
	struct store_blob *b;

	assert_int_equal(store_blob_begin(s, &b), 0);
	assert_int_equal(store_blob_write(b, text, strlen(text)), 0);
	assert_int_equal(store_blob_end(b), 0);
	return b;
}

static void
commit_one(struct store *s, int64_t run, const char *text, const char *uidl,
    const char *mailbox)
{
	struct store_msg m = {
		.blob = blob(s, text), .archive_user = "alice",
		.profile = "p", .mailbox = mailbox, .folder = "INBOX",
		.uidl = uidl, .run_id = run,
	};
	char err[256];

	assert_int_equal(store_commit(s, &m, 1, err, sizeof err), 0);
}

static void
test_uidl_seen_after_commit(void **state)
{
	struct store *s = *state;
	const char *uidls[] = { "u1", "u2", "u3" };
	bool known[3];
	int64_t run;

	assert_int_equal(store_run_begin(s, "p", "manual", &run), 0);
	commit_one(s, run, "Subject: a\r\n\r\nbody a\r\n", "u1", "m1");
	commit_one(s, run, "Subject: b\r\n\r\nbody b\r\n", "u3", "m1");
	/* The same UIDL in another mailbox is another message. */
	commit_one(s, run, "Subject: c\r\n\r\nbody c\r\n", "u2", "m2");
	assert_int_equal(store_uidls_known(s, "p", "m1", uidls, 3, known), 0);
	assert_true(known[0]);
	assert_false(known[1]);
	assert_true(known[2]);
	assert_int_equal(store_uidls_known(s, "other", "m1", uidls, 3, known), 0);
	assert_false(known[0]);
}

static void
test_uidl_of_duplicate_is_seen(void **state)
{
	struct store *s = *state;
	const char *uidls[] = { "x", "y" };
	bool known[2];
	int64_t run;

	assert_int_equal(store_run_begin(s, "p", "manual", &run), 0);
	/* Identical bytes under two UIDLs: stored once, both seen. */
	commit_one(s, run, "same bytes\r\n", "x", "m1");
	commit_one(s, run, "same bytes\r\n", "y", "m1");
	assert_int_equal(store_uidls_known(s, "p", "m1", uidls, 2, known), 0);
	assert_true(known[0]);
	assert_true(known[1]);
}

static void
test_no_uidl_records_nothing(void **state)
{
	struct store *s = *state;
	const char *uidls[] = { "" };
	bool known[1] = { true };
	int64_t run;

	assert_int_equal(store_run_begin(s, "p", "manual", &run), 0);
	commit_one(s, run, "no uidl\r\n", NULL, "m1");
	assert_int_equal(store_uidls_known(s, "p", "m1", uidls, 1, known), 0);
	assert_false(known[0]);
}

static int
count_files(const char *dir)
{
	char cmd[160];
	FILE *f;
	int n = -1;

	snprintf(cmd, sizeof cmd, "find %s/messages -type f | wc -l", dir);
	f = popen(cmd, "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%d", &n), 1);
	pclose(f);
	return n;
}

/* One message routed to three users (one of them twice): one file, three rows. */
static void
test_shared_blob_for_several_users(void **state)
{
	struct store *s = *state;
	struct store_blob *b = blob(s, "To: a@x, b@x, c@x\r\n\r\nhi\r\n");
	const char *users[] = { "a", "b", "c", "a" };
	struct store_msg m[4];
	char err[256];
	int64_t run;
	size_t i;

	assert_int_equal(store_run_begin(s, "p", "manual", &run), 0);
	for (i = 0; i < 4; i++)
		m[i] = (struct store_msg){ .blob = b, .archive_user = users[i],
		    .profile = "p", .mailbox = "catchall", .folder = "INBOX",
		    .uidvalidity = 1, .uid = 7, .run_id = run };
	assert_int_equal(store_commit(s, m, 4, err, sizeof err), 0);
	assert_false(m[0].duplicate);
	assert_false(m[1].duplicate);
	assert_false(m[2].duplicate);
	assert_true(m[3].duplicate);
	assert_int_equal(count_files(root), 1);
}

/* Filed for nobody: no file, no message row, but not fetched again. */
static void
test_skipped_is_remembered(void **state)
{
	struct store *s = *state;
	struct store_msg m = {
		.blob = blob(s, "To: stranger@else.where\r\n\r\nhi\r\n"),
		.skipped = true, .profile = "p", .mailbox = "catchall",
		.folder = "INBOX", .uidvalidity = 9, .uid = 4, .uidl = "u4",
	};
	const char *uidls[] = { "u4" };
	bool known[1] = { false };
	uint32_t *uids = NULL;
	size_t n = 0;
	char err[256];
	int64_t run;

	assert_int_equal(store_run_begin(s, "p", "manual", &run), 0);
	m.run_id = run;
	assert_int_equal(store_commit(s, &m, 1, err, sizeof err), 0);
	assert_int_equal(count_files(root), 0);
	assert_int_equal(store_known_uids(s, "p", "catchall", "INBOX", 9,
	    &uids, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(uids[0], 4);
	free(uids);
	assert_int_equal(store_uidls_known(s, "p", "catchall", uidls, 1,
	    known), 0);
	assert_true(known[0]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_uidl_seen_after_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uidl_of_duplicate_is_seen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_uidl_records_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shared_blob_for_several_users, setup, teardown),
		cmocka_unit_test_setup_teardown(test_skipped_is_remembered, setup, teardown),
	};

	return cmocka_run_group_tests_name("store_routes", tests, NULL, NULL);
}
