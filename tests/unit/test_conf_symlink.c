/*
 * test_conf_symlink.c - config files reached through a symlink: the main
 * file, a conf.d file, the conf.d directory and a mailboxes_file are read
 * through a link we (or root) own, and refused, naming the link and the
 * fix, through a link someone else owns.  Links are given away with
 * lchown(2), so those cases need root and are skipped otherwise.
 */
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

#include "conf/conf.h"

#define CONF_FX_TAG	"conflink"
#include "conf_fixture.h"

#define NOBODY	65534

static const char main_yaml[] =
    "archive:\n"
    "  path: /var/lib/mailstow\n"
    "profiles:\n"
    "  - name: main\n"
    "    server: { host: imap.example.com, protocol: imaps }\n"
    "    auth: { user: main, password_file: /etc/mailstow/secrets/main }\n";

static const char confd_yaml[] =
    "profiles:\n"
    "  - name: extra\n"
    "    server: { host: imap.example.com, protocol: imaps }\n"
    "    auth: { user: extra, password_file: /etc/mailstow/secrets/x }\n";

/* tmpdir/name -> target, owned by `uid` (-1: as created, i.e. ours). */
static void
make_link(const char *target, const char *name, uid_t uid)
{
	char path[256];
	struct stat st;

	tmp_path(path, sizeof path, name);
	assert_int_equal(symlink(target, path), 0);
	if (uid != (uid_t)-1) {
		assert_int_equal(lchown(path, uid, uid), 0);
		assert_int_equal(lstat(path, &st), 0);
		assert_int_equal(st.st_uid, uid);
	}
}

static void
unlink_tmp(const char *name)
{
	char path[256];

	tmp_path(path, sizeof path, name);
	assert_int_equal(unlink(path), 0);
}

/* Giving a link away needs CAP_CHOWN. */
static void
need_root(void)
{
	if (geteuid() != 0)
		skip();
}

/* Every test starts in a fresh private directory: a sticky,
 * world-writable one (/tmp itself) would bring the kernel's own
 * protected_symlinks rule into play. */
static int
setup(void **state)
{
	if (tmp_setup(state) != 0)
		return -1;
	write_file("real.yaml", main_yaml, 0600);
	return 0;
}

static void
expect_loads(const char *name, size_t n_profiles)
{
	struct conf_error err;
	struct conf *c = NULL;
	char path[256];
	int r;

	tmp_path(path, sizeof path, name);
	if ((r = conf_load(path, &c, &err)) != 0)
		fail_msg("%s: %d: %s", path, r, err.text);
	assert_int_equal(c->n_profiles, n_profiles);
	conf_free(c);
}

/* Refused with -EPERM; the text starts with "LINK: a symlink" (LINK under
 * tmpdir), names the owner and says what to do; *ret stays untouched. */
static void
expect_refused(const char *name, const char *link)
{
	struct conf *sentinel = (struct conf *)(uintptr_t)0x5a5a, *c = sentinel;
	struct conf_error err;
	char path[256], lpath[256], prefix[320];
	int r;

	tmp_path(path, sizeof path, name);
	tmp_path(lpath, sizeof lpath, link);
	snprintf(prefix, sizeof prefix, "%s: a symlink owned by uid 65534",
	    lpath);
	r = conf_load(path, &c, &err);
	if (r != -EPERM || c != sentinel ||
	    strncmp(err.text, prefix, strlen(prefix)) != 0 ||
	    strstr(err.text, "neither root nor us") == NULL ||
	    strstr(err.text, "; replace it with the ") == NULL)
		fail_msg("%s: r=%d\n  got:  %s\n  want: %s...", path, r,
		    err.text, prefix);
}

static void
test_plain_file_loads(void **state)
{
	expect_loads("real.yaml", 1);
}

static void
test_own_link_followed(void **state)
{
	make_link("real.yaml", "link.yaml", (uid_t)-1);
	expect_loads("link.yaml", 1);
}

static void
test_root_link_followed(void **state)
{
	need_root();
	make_link("real.yaml", "link.yaml", 0);
	expect_loads("link.yaml", 1);
}

static void
test_foreign_link_refused(void **state)
{
	char target[256];

	need_root();
	make_link("real.yaml", "link.yaml", NOBODY);
	expect_refused("link.yaml", "link.yaml");
	/* An absolute target makes no difference. */
	tmp_path(target, sizeof target, "real.yaml");
	make_link(target, "abs.yaml", NOBODY);
	expect_refused("abs.yaml", "abs.yaml");
}

static void
test_dangling_own_link(void **state)
{
	struct conf_error err;
	struct conf *c = NULL;
	char path[256];

	make_link("missing.yaml", "link.yaml", (uid_t)-1);
	tmp_path(path, sizeof path, "link.yaml");
	assert_int_equal(conf_load(path, &c, &err), -ENOENT);
	assert_null(c);
	assert_non_null(strstr(err.text, ": cannot open: "));
}

static void
make_confd(void)
{
	char path[256];

	tmp_path(path, sizeof path, "conf.d");
	assert_int_equal(mkdir(path, 0700), 0);
	write_file("extra.yaml", confd_yaml, 0600);
}

static void
test_confd_links(void **state)
{
	need_root();
	make_confd();
	make_link("../extra.yaml", "conf.d/extra.yaml", (uid_t)-1);
	expect_loads("real.yaml", 2);
	unlink_tmp("conf.d/extra.yaml");
	make_link("../extra.yaml", "conf.d/extra.yaml", NOBODY);
	expect_refused("real.yaml", "conf.d/extra.yaml");
}

static void
test_confd_dir_link(void **state)
{
	char path[256];

	need_root();
	tmp_path(path, sizeof path, "d");
	assert_int_equal(mkdir(path, 0700), 0);
	write_file("d/extra.yaml", confd_yaml, 0600);
	make_link("d", "conf.d", (uid_t)-1);
	expect_loads("real.yaml", 2);
	unlink_tmp("conf.d");
	make_link("d", "conf.d", NOBODY);
	expect_refused("real.yaml", "conf.d");
}

static void
load_mailboxes(int want, const char *csv)
{
	struct conf_profile p;
	struct conf_mailbox *mb = NULL;
	struct conf_error err;
	char **warn = NULL, path[256], prefix[300];
	size_t n = 0, n_warn = 0;
	int r;

	memset(&p, 0, sizeof p);
	p.name = "staff";
	p.source_file = "/etc/mailstow/mailstow.yaml";
	p.source_line = 4;
	p.auth.master_user = "archiver";
	p.auth.password_file = "/etc/mailstow/secrets/archiver";
	tmp_path(path, sizeof path, csv);
	p.mailboxes_file = path;
	r = conf_mailboxes_load(&p, &mb, &n, &warn, &n_warn, &err);
	if (r != want)
		fail_msg("%s: r=%d (want %d): %s", path, r, want, err.text);
	if (want == 0) {
		assert_int_equal(n, 1);
		assert_string_equal(mb[0].user, "alice");
		conf_mailboxes_free(mb, n);
		conf_strings_free(warn, n_warn);
		return;
	}
	snprintf(prefix, sizeof prefix, "%s: a symlink owned by uid 65534",
	    path);
	assert_int_equal(strncmp(err.text, prefix, strlen(prefix)), 0);
	assert_non_null(strstr(err.text, "replace it with the file itself"));
}

static void
test_mailboxes_file_link(void **state)
{
	need_root();
	write_file("mb.csv", "alice\n", 0600);
	make_link("mb.csv", "mb-link.csv", (uid_t)-1);
	load_mailboxes(0, "mb-link.csv");
	make_link("mb.csv", "mb-foreign.csv", NOBODY);
	load_mailboxes(-EPERM, "mb-foreign.csv");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_plain_file_loads, setup,
		    tmp_teardown),
		cmocka_unit_test_setup_teardown(test_own_link_followed, setup,
		    tmp_teardown),
		cmocka_unit_test_setup_teardown(test_root_link_followed, setup,
		    tmp_teardown),
		cmocka_unit_test_setup_teardown(test_foreign_link_refused, setup,
		    tmp_teardown),
		cmocka_unit_test_setup_teardown(test_dangling_own_link, setup,
		    tmp_teardown),
		cmocka_unit_test_setup_teardown(test_confd_links, setup,
		    tmp_teardown),
		cmocka_unit_test_setup_teardown(test_confd_dir_link, setup,
		    tmp_teardown),
		cmocka_unit_test_setup_teardown(test_mailboxes_file_link, setup,
		    tmp_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
