/*
 * test_conf_passwords.c - the config loader's password sources: inline
 * (in the main file and in conf.d), a password file with its size, kind
 * and permission checks, and a systemd credential.
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/util.h"
#include "conf/conf.h"
#include "conf_fixture.h"

/* --- passwords --- */

static const char inline_conf[] =
    "archive:\n"
    "  path: /var/lib/mailstow\n"
    "profiles:\n"
    "  - name: alice\n"
    "    server: { host: imap.example.com, protocol: imaps }\n"
    "    auth:\n"
    "      user: alice\n"
    "      password: \"s3cr3t-inline\"\n";

static void
test_inline_password(void **state)
{
	struct conf_error err;
	struct conf *c = NULL;
	char path[256], want[1024], *pw;

	tmp_path(path, sizeof path, "inline.yaml");
	write_file("inline.yaml", inline_conf, 0644);
	assert_int_equal(conf_load(path, &c, &err), -EPERM);
	assert_null(c);
	snprintf(want, sizeof want, "%s:8:17: profiles[0].auth.password: "
	    "inline password in %s, which is readable by group or others "
	    "(mode 0644); chmod 600 %s or use password_file", path, path, path);
	assert_string_equal(err.text, want);

	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(conf_load(path, &c, &err), -EPERM);
	assert_null(strstr(err.text, "s3cr3t"));

	assert_int_equal(chmod(path, 0600), 0);
	if (conf_load(path, &c, &err) != 0)
		fail_msg("%s", err.text);
	assert_string_equal(c->profiles[0].auth.password, "s3cr3t-inline");
	assert_int_equal(conf_read_password(&c->profiles[0], &pw, &err), 0);
	assert_string_equal(pw, "s3cr3t-inline");
	secret_free(pw);
	conf_free(c);
}

static void
test_inline_password_confd(void **state)
{
	char sub[256], main[256], confd[256];
	struct conf_error err;
	struct conf *c = NULL;

	/* The check applies to the conf.d file that holds the password. */
	tmp_path(sub, sizeof sub, "sub");
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(mkdir(strcat(strcpy(confd, sub), "/conf.d"), 0700), 0);
	write_file("sub/mailstow.yaml", "archive: {path: /a}\n", 0600);
	write_file("sub/conf.d/a.yaml", strstr(inline_conf, "profiles:"), 0604);
	tmp_path(main, sizeof main, "sub/mailstow.yaml");
	assert_int_equal(conf_load(main, &c, &err), -EPERM);
	assert_non_null(strstr(err.text, "sub/conf.d/a.yaml:6:17: "
	    "profiles[0].auth.password: inline password in "));
	assert_non_null(strstr(err.text, "(mode 0604); chmod 600 "));
	assert_null(c);
}

/* A profile that names its password source, as conf_load would fill it. */
static void
mkprofile(struct conf_profile *p, const char *file, const char *cred)
{
	memset(p, 0, sizeof *p);
	p->name = "alice";
	p->source_file = "/etc/mailstow/mailstow.yaml";
	p->source_line = 12;
	p->auth.user = "alice";
	p->auth.password_file = (char *)file;
	p->auth.password_credential = (char *)cred;
}

static int
read_pw(const char *name, char **pw, struct conf_error *err)
{
	struct conf_profile p;
	char path[256];

	tmp_path(path, sizeof path, name);
	mkprofile(&p, path, NULL);
	*pw = NULL;
	return conf_read_password(&p, pw, err);
}

static void
expect_pw(const char *content, size_t len, const char *want)
{
	struct conf_error err;
	char *pw;

	write_file_len("pw", content, len, 0600);
	if (read_pw("pw", &pw, &err) != 0)
		fail_msg("%s", err.text);
	assert_string_equal(pw, want);
	secret_free(pw);
}

static void
expect_pw_error(const char *content, size_t len, mode_t mode, int code,
    const char *what)
{
	struct conf_error err;
	char *pw;

	write_file_len("pw", content, len, mode);
	assert_int_equal(read_pw("pw", &pw, &err), code);
	assert_null(pw);
	if (strstr(err.text, what) == NULL)
		fail_msg("got: %s\nwant: %s", err.text, what);
	/* Never the secret itself. */
	assert_null(strstr(err.text, "hunter"));
	assert_non_null(strstr(err.text, "/etc/mailstow/mailstow.yaml:12: "
	    "profile alice: auth.password_file: "));
}

static void
test_password_file(void **state)
{
	char path[256], want[1024];

	tmp_path(path, sizeof path, "pw");
	expect_pw("hunter2\n", 8, "hunter2");
	expect_pw("hunter2\r\n", 9, "hunter2");
	expect_pw("hunter2", 7, "hunter2");
	expect_pw("  hunter 2\t\n", 12, "  hunter 2\t");

	snprintf(want, sizeof want, "%s is readable by group or others "
	    "(mode 0644); chmod 600 %s", path, path);
	expect_pw_error("hunter2\n", 8, 0644, -EPERM, want);
	expect_pw_error("hunter2\n", 8, 0640, -EPERM, "(mode 0640)");
	expect_pw_error("hunter2\n", 8, 0602, -EPERM, "(mode 0602)");
	expect_pw_error("", 0, 0600, -EINVAL, "is empty");
	expect_pw_error("\n", 1, 0600, -EINVAL, "is empty");
	expect_pw_error("\r\n", 2, 0600, -EINVAL, "is empty");
	expect_pw_error("hunter2\n\n", 9, 0600, -EINVAL, "more than one line");
	expect_pw_error("hunter2\nhunter3\n", 16, 0600, -EINVAL,
	    "more than one line");
	expect_pw_error("hunter2\r", 8, 0600, -EINVAL, "more than one line");
	expect_pw_error("hun\0ter2\n", 9, 0600, -EINVAL, "NUL byte");
}

static void
test_password_file_size(void **state)
{
	struct conf_error err;
	char big[4200], *pw;

	memset(big, 'h', sizeof big);
	write_file_len("pw", big, 4096, 0600);
	assert_int_equal(read_pw("pw", &pw, &err), 0);
	assert_int_equal(strlen(pw), 4096);
	secret_free(pw);
	write_file_len("pw", big, 4097, 0600);
	assert_int_equal(read_pw("pw", &pw, &err), -EINVAL);
	assert_non_null(strstr(err.text, "larger than 4096 bytes"));
}

static void
test_password_file_kinds(void **state)
{
	struct conf_error err;
	char path[256], link[256], *pw;

	/* Missing. */
	assert_int_equal(read_pw("nope", &pw, &err), -ENOENT);
	assert_non_null(strstr(err.text, "cannot read"));
	/* A directory, and a FIFO that must not block us. */
	tmp_path(path, sizeof path, "dir");
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(read_pw("dir", &pw, &err), -EINVAL);
	assert_non_null(strstr(err.text, "is not a regular file"));
	tmp_path(path, sizeof path, "fifo");
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(read_pw("fifo", &pw, &err), -EINVAL);
	assert_non_null(strstr(err.text, "is not a regular file"));

	/* A symlink of ours to a good file is followed ... */
	write_file("target", "hunter2\n", 0600);
	tmp_path(path, sizeof path, "target");
	tmp_path(link, sizeof link, "link");
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(read_pw("link", &pw, &err), 0);
	assert_string_equal(pw, "hunter2");
	secret_free(pw);
	/* ... and the target must pass the checks. */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(read_pw("link", &pw, &err), -EPERM);
	assert_non_null(strstr(err.text, "link is readable by group or "
	    "others (mode 0644)"));
	assert_int_equal(chmod(path, 0600), 0);

	/* A symlink owned by someone else is refused (needs root to make). */
	if (geteuid() != 0)
		return;
	assert_int_equal(lchown(link, 65534, 65534), 0);
	assert_int_equal(read_pw("link", &pw, &err), -EPERM);
	assert_non_null(strstr(err.text, "link: a symlink owned by uid 65534"));
	assert_null(pw);
}

static void
test_password_credential(void **state)
{
	struct conf_profile p;
	struct conf_error err;
	char path[256], *pw = NULL;

	mkprofile(&p, NULL, "alice-cred");
	unsetenv("CREDENTIALS_DIRECTORY");
	assert_int_equal(conf_read_password(&p, &pw, &err), -ENOENT);
	assert_non_null(strstr(err.text, "auth.password_credential: credential "
	    "'alice-cred' needs $CREDENTIALS_DIRECTORY, which is not set"));
	assert_null(pw);

	setenv("CREDENTIALS_DIRECTORY", tmpdir, 1);
	write_file("alice-cred", "hunter2\n", 0400);
	assert_int_equal(conf_read_password(&p, &pw, &err), 0);
	assert_string_equal(pw, "hunter2");
	secret_free(pw);
	pw = NULL;

	tmp_path(path, sizeof path, "alice-cred");
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(conf_read_password(&p, &pw, &err), -EPERM);
	assert_non_null(strstr(err.text, "chmod 600"));

	p.auth.password_credential = "../alice-cred";
	assert_int_equal(conf_read_password(&p, &pw, &err), -EINVAL);
	assert_null(pw);
	unsetenv("CREDENTIALS_DIRECTORY");

	mkprofile(&p, NULL, NULL);
	assert_int_equal(conf_read_password(&p, &pw, &err), -EINVAL);
	assert_non_null(strstr(err.text, "no password source"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, tmp_setup, tmp_teardown)
		T(test_inline_password),
		T(test_inline_password_confd),
		T(test_password_file),
		T(test_password_file_size),
		T(test_password_file_kinds),
		T(test_password_credential),
#undef T
	};

	return cmocka_run_group_tests_name("conf_passwords", tests, NULL,
	    NULL);
}
