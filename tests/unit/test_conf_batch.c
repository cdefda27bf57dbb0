/*
 * test_conf_batch.c - the config keys of batch and multidrop profiles:
 * every error of auth.master_user/method/separator, mailboxes,
 * mailboxes_file, max_parallel and multidrop from a fixture of its own
 * (file, line, column and key path asserted), the parsed values and
 * defaults of a valid file, and conf_mailboxes_load() on mailbox files
 * with good, malformed, duplicate and comment lines.
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

#define CONF_FX_TAG	"batch"
#include "conf_fixture.h"

static char srcdir[2048];

/* Fixtures are found under $MAILSTOW_SRCDIR, else the current directory
 * (the tests run from the top of the source tree). */
static void
find_srcdir(void)
{
	const char *env = getenv("MAILSTOW_SRCDIR");

	snprintf(srcdir, sizeof srcdir, "%s", env != NULL && *env ? env : ".");
}

static void
fixture(char *buf, size_t len, const char *rel)
{
	snprintf(buf, len, "%s/tests/unit/fixtures/conf/batch/%s", srcdir, rel);
}

/* --- errors, one fixture each --- */

struct err_case {
	const char	*file;		/* under fixtures/conf/batch/ */
	const char	*pos;		/* "LINE:COL" */
	const char	*key;		/* key path */
	const char	*what;		/* a phrase of the message */
};

static const struct err_case err_cases[] = {
	{ "master_without_mailboxes.yaml", "4:5", "profiles[0]",
	    "auth.master_user logs in on behalf of a batch; add mailboxes: "
	    "or mailboxes_file:" },
	/* The same mistake without auth.user: the batch hint, not "add
	 * auth.user", which would make it a single-mailbox profile. */
	{ "master_without_mailboxes_nouser.yaml", "4:5", "profiles[0]",
	    "auth.master_user logs in on behalf of a batch" },
	{ "user_and_mailboxes.yaml", "11:7", "profiles[0].mailboxes",
	    "a profile archives either auth.user or a list of mailboxes; "
	    "remove one of them" },
	{ "user_and_mailboxes_file.yaml", "7:21", "profiles[0].mailboxes_file",
	    "a profile archives either auth.user or a list of mailboxes" },
	{ "no_password.yaml", "10:9", "profiles[0].mailboxes[1]",
	    "no password for this mailbox; give it a password_file:, or set "
	    "auth.master_user" },
	{ "multidrop_archive_user.yaml", "7:19", "profiles[0].archive_user",
	    "a multidrop profile has no archive_user: routing decides; "
	    "remove archive_user:" },
	{ "bad_method.yaml", "9:15", "profiles[0].auth.method",
	    "method is authzid (SASL PLAIN on behalf of the mailbox) or "
	    "separator" },
	{ "bad_strip_detail.yaml", "9:21", "profiles[0].multidrop.strip_detail",
	    "strip_detail is one character, such as \"+\" or \"-\"" },
	{ "strip_detail_at.yaml", "8:21", "profiles[0].multidrop.strip_detail",
	    "strip_detail is one character" },
	{ "mailbox_without_user.yaml", "9:9", "profiles[0].mailboxes[1].user",
	    "required key 'user' is missing" },
	{ "method_without_master.yaml", "7:7", "profiles[0].auth",
	    "method and separator go with master_user; add master_user:" },
	{ "separator_long.yaml", "10:18", "profiles[0].auth.separator",
	    "separator is 1 to 8 characters" },
	{ "mailboxes_empty.yaml", "7:16", "profiles[0].mailboxes",
	    "expected a list of mailboxes" },
	{ "mailbox_unknown_key.yaml", "8:9", "profiles[0].mailboxes[0].usr",
	    "unknown key 'usr'; did you mean 'user'?" },
	{ "multidrop_batch.yaml", "9:7", "profiles[0].multidrop",
	    "multidrop routes one catch-all mailbox; give auth.user, not a "
	    "batch" },
	{ "max_parallel_zero.yaml", "8:19", "profiles[0].max_parallel",
	    "0 is out of range; give a number from 1 to 64" },
	{ "multidrop_unknown_key.yaml", "8:7",
	    "profiles[0].multidrop.local_domain",
	    "unknown key 'local_domain'; did you mean 'local_domains'?" },
	{ "recipients_list.yaml", "8:19", "profiles[0].multidrop.recipients",
	    "expected a mapping of address patterns to archive users" },
	{ "mailboxes_file_relative.yaml", "7:21", "profiles[0].mailboxes_file",
	    "'staff.csv' is not an absolute path" },
	{ "mailbox_password_relative.yaml", "9:24",
	    "profiles[0].mailboxes[0].password_file",
	    "'secrets/alice' is not an absolute path" },
	/* Two sessions for one mailbox would archive it twice at once. */
	{ "duplicate_mailbox.yaml", "10:15", "profiles[0].mailboxes[2].user",
	    "alice" },
	{ "master_two_passwords.yaml", "9:28",
	    "profiles[0].auth.password_credential",
	    "more than one password source" },
	{ "master_no_password.yaml", "7:7", "profiles[0].auth",
	    "no password source" },
};

static void
test_error_case(void **state)
{
	struct conf *sentinel = (struct conf *)(uintptr_t)0x5a5a, *c = sentinel;
	const struct err_case *ec = *state;
	struct conf_error err;
	char path[4096], prefix[4400];
	int r;

	fixture(path, sizeof path, ec->file);
	memset(&err, 'x', sizeof err);
	r = conf_load(path, &c, &err);
	if (r == 0) {
		conf_free(c);
		fail_msg("%s: loaded, want %s:%s: %s: ...%s", ec->file, path,
		    ec->pos, ec->key, ec->what);
	}
	snprintf(prefix, sizeof prefix, "%s:%s: %s: ", path, ec->pos, ec->key);
	if (r != -EINVAL || c != sentinel ||
	    strncmp(err.text, prefix, strlen(prefix)) != 0 ||
	    strstr(err.text, ec->what) == NULL)
		fail_msg("%s: r=%d (want %d)\n  got:  %s\n  want: %s...%s",
		    ec->file, r, -EINVAL, err.text, prefix, ec->what);
}

/* --- the valid file --- */

static void
expect_mailbox(const struct conf_mailbox *mb, const char *user,
    const char *archive_user, const char *password_file, const char *file,
    unsigned line)
{
	assert_string_equal(mb->user, user);
	assert_string_equal(mb->archive_user, archive_user);
	if (password_file == NULL)
		assert_null(mb->password_file);
	else
		assert_string_equal(mb->password_file, password_file);
	assert_string_equal(mb->source_file, file);
	assert_int_equal(mb->source_line, line);
}

static void
expect_list(char **got, size_t n, const char *const *want, size_t n_want)
{
	size_t i;

	assert_int_equal(n, n_want);
	for (i = 0; i < n; i++)
		assert_string_equal(got[i], want[i]);
}

static void
test_valid_batch(void **state)
{
	const struct conf_profile *p;
	struct conf_error err;
	struct conf *c;
	char path[4096];

	fixture(path, sizeof path, "valid.yaml");
	if (conf_load(path, &c, &err) != 0)
		fail_msg("%s", err.text);
	assert_int_equal(c->n_profiles, 6);

	p = conf_find_profile(c, "staff");
	assert_non_null(p);
	assert_null(p->auth.user);
	assert_null(p->archive_user);
	assert_string_equal(p->auth.master_user, "archiver");
	assert_string_equal(p->auth.password_file,
	    "/etc/mailstow/secrets/archiver");
	assert_int_equal(p->auth.method, CONF_AUTH_SEPARATOR);
	assert_string_equal(p->auth.separator, "+");
	assert_int_equal(p->n_mailboxes, 3);
	expect_mailbox(&p->mailboxes[0], "alice@example.com",
	    "alice@example.com", NULL, path, 13);
	expect_mailbox(&p->mailboxes[1], "bob@example.com", "bob", NULL,
	    path, 14);
	expect_mailbox(&p->mailboxes[2], "carol@example.com",
	    "carol@example.com", "/etc/mailstow/secrets/carol", path, 16);
	assert_string_equal(p->mailboxes_file, "/etc/mailstow/staff.csv");
	assert_int_equal(p->max_parallel, 8);
	assert_false(p->multidrop.enabled);

	/* Defaults: method authzid, separator unset (the run uses "*"),
	 * max_parallel 4. */
	p = conf_find_profile(c, "own");
	assert_non_null(p);
	assert_null(p->auth.master_user);
	assert_null(p->auth.password_file);
	assert_int_equal(p->auth.method, CONF_AUTH_AUTHZID);
	assert_null(p->auth.separator);
	assert_int_equal(p->max_parallel, 4);
	assert_int_equal(p->n_mailboxes, 1);
	expect_mailbox(&p->mailboxes[0], "dave", "dave",
	    "/etc/mailstow/secrets/dave", path, 24);
	assert_null(p->mailboxes_file);

	/* A profile password source serves every mailbox of a batch. */
	p = conf_find_profile(c, "shared");
	assert_non_null(p);
	assert_string_equal(p->auth.password_file,
	    "/etc/mailstow/secrets/shared");
	assert_int_equal(p->n_mailboxes, 0);
	assert_string_equal(p->mailboxes_file, "/etc/mailstow/shared.csv");
	conf_free(c);
}

static void
test_valid_multidrop(void **state)
{
	static const char *const hdr[] = { "X-Envelope-To" };
	static const char *const fb[] = { "To" };
	static const char *const dom[] = { "example.com", "Example.ORG" };
	static const char *const def_hdr[] = {
		"Delivered-To", "X-Original-To", "X-Envelope-To", "Envelope-To",
	};
	static const char *const def_fb[] = {
		"To", "Cc", "Bcc", "Resent-To", "Resent-Cc",
	};
	const struct conf_multidrop *md;
	const struct conf_profile *p;
	struct conf_error err;
	struct conf *c;
	char path[4096];

	fixture(path, sizeof path, "valid.yaml");
	if (conf_load(path, &c, &err) != 0)
		fail_msg("%s", err.text);

	p = conf_find_profile(c, "catchall");
	assert_non_null(p);
	md = &p->multidrop;
	assert_true(md->enabled);
	assert_null(p->archive_user);		/* routing decides */
	assert_int_equal(p->n_mailboxes, 0);
	expect_list(md->headers, md->n_headers, hdr, NELEM(hdr));
	expect_list(md->fall_back_to, md->n_fall_back_to, fb, NELEM(fb));
	expect_list(md->local_domains, md->n_local_domains, dom, NELEM(dom));
	assert_int_equal(md->n_recipients, 3);
	/* In file order: the first match wins. */
	assert_string_equal(md->recipients[0].pattern, "alice@example.com");
	assert_string_equal(md->recipients[0].user, "alice");
	assert_string_equal(md->recipients[1].pattern, "sales-*@example.com");
	assert_string_equal(md->recipients[1].user, "sales");
	assert_string_equal(md->recipients[2].pattern,
	    "*@support.example.org");
	assert_string_equal(md->recipients[2].user, "support");
	assert_int_equal(md->strip_detail, '-');
	assert_null(md->unknown);		/* skip */
	assert_true(md->use_received);

	/* Every default: the strangers stay in the catch-all's own archive. */
	p = conf_find_profile(c, "catchall2");
	assert_non_null(p);
	md = &p->multidrop;
	assert_true(md->enabled);
	assert_null(p->archive_user);
	expect_list(md->headers, md->n_headers, def_hdr, NELEM(def_hdr));
	expect_list(md->fall_back_to, md->n_fall_back_to, def_fb,
	    NELEM(def_fb));
	assert_int_equal(md->n_local_domains, 0);
	assert_int_equal(md->n_recipients, 0);
	assert_int_equal(md->strip_detail, 0);
	assert_string_equal(md->unknown, "catchall@example.org");
	assert_false(md->use_received);

	p = conf_find_profile(c, "catchall3");
	assert_non_null(p);
	assert_string_equal(p->multidrop.unknown, "strangers");
	conf_free(c);
}

static void
test_example_config(void **state)
{
	const struct conf_profile *p;
	struct conf_error err;
	struct conf *c;
	char path[4096];

	/* The shipped example documents a batch and a multidrop profile;
	 * they load as documented there. */
	snprintf(path, sizeof path, "%s/conf/mailstow.yaml", srcdir);
	if (conf_load(path, &c, &err) != 0)
		fail_msg("%s", err.text);
	p = conf_find_profile(c, "staff");
	assert_non_null(p);
	assert_string_equal(p->auth.master_user, "archiver");
	assert_int_equal(p->auth.method, CONF_AUTH_AUTHZID);
	assert_int_equal(p->n_mailboxes, 2);
	assert_string_equal(p->mailboxes[0].archive_user, "alice@example.com");
	assert_string_equal(p->mailboxes[1].archive_user, "bob");
	assert_non_null(p->mailboxes_file);
	assert_int_equal(p->max_parallel, 4);
	p = conf_find_profile(c, "catchall");
	assert_non_null(p);
	assert_true(p->multidrop.enabled);
	assert_int_equal(p->multidrop.n_headers, 4);
	assert_int_equal(p->multidrop.n_fall_back_to, 5);
	assert_int_equal(p->multidrop.n_recipients, 3);
	assert_int_equal(p->multidrop.strip_detail, '+');
	assert_string_equal(p->multidrop.unknown, "catchall-unknown");
	assert_false(p->multidrop.use_received);
	conf_free(c);
}

/* --- conf_mailboxes_load --- */

/* The mailboxes_file of `p` is tmpdir/mb.csv; a list may come first. */
static char csv[256];

static void
mkprofile(struct conf_profile *p, struct conf_mailbox *list, size_t n)
{
	memset(p, 0, sizeof *p);
	p->name = "staff";
	p->source_file = "/etc/mailstow/mailstow.yaml";
	p->source_line = 4;
	p->auth.master_user = "archiver";
	p->auth.password_file = "/etc/mailstow/secrets/archiver";
	p->mailboxes = list;
	p->n_mailboxes = n;
	tmp_path(csv, sizeof csv, "mb.csv");
	p->mailboxes_file = csv;
}

struct loaded {
	struct conf_mailbox *mb;
	size_t n;
	char **warn;
	size_t n_warn;
};

static void
load(const struct conf_profile *p, struct loaded *l)
{
	struct conf_error err;
	int r;

	memset(l, 0, sizeof *l);
	r = conf_mailboxes_load(p, &l->mb, &l->n, &l->warn, &l->n_warn, &err);
	if (r != 0)
		fail_msg("conf_mailboxes_load: %d: %s", r, err.text);
}

static void
loaded_free(struct loaded *l)
{
	conf_mailboxes_free(l->mb, l->n);
	conf_strings_free(l->warn, l->n_warn);
}

/* Warning i is "CSV:LINE: " followed by a text holding `what`. */
static void
expect_warning(const struct loaded *l, size_t i, unsigned line,
    const char *what)
{
	char prefix[512];

	assert_true(i < l->n_warn);
	snprintf(prefix, sizeof prefix, "%s:%u: ", csv, line);
	if (strncmp(l->warn[i], prefix, strlen(prefix)) != 0 ||
	    strstr(l->warn[i], what) == NULL)
		fail_msg("warning %zu\n  got:  %s\n  want: %s...%s", i,
		    l->warn[i], prefix, what);
}

static void
test_single_profile(void **state)
{
	struct conf_profile p;
	struct loaded l;

	/* A single-mailbox profile is a batch of one. */
	memset(&p, 0, sizeof p);
	p.name = "alice";
	p.source_file = "/etc/mailstow/mailstow.yaml";
	p.source_line = 7;
	p.auth.user = "alice@example.com";
	p.archive_user = "alice";
	load(&p, &l);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.n_warn, 0);
	assert_null(l.warn);
	expect_mailbox(&l.mb[0], "alice@example.com", "alice", NULL,
	    "/etc/mailstow/mailstow.yaml", 7);
	loaded_free(&l);
}

static void
test_list_then_file(void **state)
{
	struct conf_mailbox list[] = {
		{ "alice", NULL, NULL, "/etc/mailstow/mailstow.yaml", 9 },
		{ "bob", "bob-arch", "/etc/mailstow/secrets/bob",
		    "/etc/mailstow/mailstow.yaml", 10 },
	};
	struct conf_profile p;
	struct loaded l;

	mkprofile(&p, list, NELEM(list));
	write_file("mb.csv",
	    "# the staff, one per line\n"
	    "carol\n"
	    "  dave , dave-arch  \r\n"
	    "erin,erin-arch,/etc/mailstow/secrets/erin\n"
	    "\tfrank\t,\n"
	    "   # an indented comment\n"
	    "gina", 0644);
	load(&p, &l);
	assert_int_equal(l.n_warn, 0);
	assert_int_equal(l.n, 7);
	expect_mailbox(&l.mb[0], "alice", "alice", NULL,
	    "/etc/mailstow/mailstow.yaml", 9);
	expect_mailbox(&l.mb[1], "bob", "bob-arch",
	    "/etc/mailstow/secrets/bob", "/etc/mailstow/mailstow.yaml", 10);
	expect_mailbox(&l.mb[2], "carol", "carol", NULL, csv, 2);
	expect_mailbox(&l.mb[3], "dave", "dave-arch", NULL, csv, 3);
	expect_mailbox(&l.mb[4], "erin", "erin-arch",
	    "/etc/mailstow/secrets/erin", csv, 4);
	expect_mailbox(&l.mb[5], "frank", "frank", NULL, csv, 5);
	expect_mailbox(&l.mb[6], "gina", "gina", NULL, csv, 7);
	/* Copies: the profile's list is not handed out. */
	assert_ptr_not_equal(l.mb[0].user, list[0].user);
	loaded_free(&l);

	/* Read again at every call: an added line is there next time. */
	write_file("mb.csv", "carol\nheidi\n", 0644);
	load(&p, &l);
	assert_int_equal(l.n, 4);
	expect_mailbox(&l.mb[3], "heidi", "heidi", NULL, csv, 2);
	loaded_free(&l);
}

static void
test_empty_fields(void **state)
{
	struct conf_profile p;
	struct loaded l;

	/* An empty field is empty, not skipped: "erin,,/pw" gives erin a
	 * password file, not an archive user called "/pw". */
	mkprofile(&p, NULL, 0);
	write_file("mb.csv", "erin,,/etc/mailstow/secrets/erin\n"
	    ",nobody\n"
	    "frank,,\n", 0644);
	load(&p, &l);
	assert_int_equal(l.n, 2);
	expect_mailbox(&l.mb[0], "erin", "erin",
	    "/etc/mailstow/secrets/erin", csv, 1);
	expect_mailbox(&l.mb[1], "frank", "frank", NULL, csv, 3);
	assert_int_equal(l.n_warn, 1);
	expect_warning(&l, 0, 2, "the user field is empty");
	loaded_free(&l);
}

static void
test_line_numbers(void **state)
{
	struct conf_profile p;
	struct loaded l;

	/* Blank lines count, as in an editor. */
	mkprofile(&p, NULL, 0);
	write_file("mb.csv", "alice\n\n\n# comment\n\nbob\n\n\na,b,/c,d\n",
	    0644);
	load(&p, &l);
	assert_int_equal(l.n, 2);
	expect_mailbox(&l.mb[0], "alice", "alice", NULL, csv, 1);
	expect_mailbox(&l.mb[1], "bob", "bob", NULL, csv, 6);
	assert_int_equal(l.n_warn, 1);
	expect_warning(&l, 0, 9, "more than three fields; the line is "
	    "skipped, the other mailboxes are archived");
	loaded_free(&l);
}

static void
test_malformed_lines(void **state)
{
	char text[2048], user[400];
	struct conf_profile p;
	struct loaded l;

	memset(user, 'u', 321);
	user[321] = '\0';
	snprintf(text, sizeof text,
	    "alice\n"				/* 1 */
	    "a,b,/c,d\n"			/* 2: four fields */
	    "bob,,secrets/bob\n"		/* 3: relative password */
	    "car\001ol\n"			/* 4: control character */
	    "%s\n"				/* 5: user over 320 bytes */
	    "%.320s\n"				/* 6: 320 bytes: fine */
	    "dave,da\177ve\n"			/* 7: DEL in archive_user */
	    "erin\n",				/* 8 */
	    user, user);
	mkprofile(&p, NULL, 0);
	write_file("mb.csv", text, 0644);
	load(&p, &l);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.mb[0].user, "alice");
	assert_int_equal(strlen(l.mb[1].user), 320);
	assert_int_equal(l.mb[1].source_line, 6);
	assert_string_equal(l.mb[2].user, "erin");
	assert_int_equal(l.n_warn, 5);
	expect_warning(&l, 0, 2, "more than three fields");
	expect_warning(&l, 1, 3, "the password_file field must be an "
	    "absolute path");
	expect_warning(&l, 2, 4, "the user field is empty, too long or holds "
	    "control characters");
	expect_warning(&l, 3, 5, "the user field");
	expect_warning(&l, 4, 7, "the archive_user field");
	loaded_free(&l);
}

static void
test_duplicates(void **state)
{
	struct conf_mailbox list[] = {
		{ "alice", NULL, NULL, "/etc/mailstow/mailstow.yaml", 9 },
	};
	struct conf_profile p;
	struct loaded l;

	/* The first listing wins, in the list or in the file. */
	mkprofile(&p, list, NELEM(list));
	write_file("mb.csv", "bob\nalice,alice2\nbob,bob2\ncarol\n", 0644);
	load(&p, &l);
	assert_int_equal(l.n, 3);
	expect_mailbox(&l.mb[0], "alice", "alice", NULL,
	    "/etc/mailstow/mailstow.yaml", 9);
	expect_mailbox(&l.mb[1], "bob", "bob", NULL, csv, 1);
	expect_mailbox(&l.mb[2], "carol", "carol", NULL, csv, 4);
	assert_int_equal(l.n_warn, 2);
	expect_warning(&l, 0, 2, "mailbox alice is listed twice; the line is "
	    "skipped");
	expect_warning(&l, 1, 3, "mailbox bob is listed twice");
	loaded_free(&l);
}

static void
test_only_comments(void **state)
{
	struct conf_profile p;
	struct loaded l;

	mkprofile(&p, NULL, 0);
	write_file("mb.csv", "# nobody yet\n\n   \n", 0644);
	load(&p, &l);
	assert_int_equal(l.n, 0);
	assert_int_equal(l.n_warn, 0);
	loaded_free(&l);
	write_file("mb.csv", "", 0644);
	load(&p, &l);
	assert_int_equal(l.n, 0);
	loaded_free(&l);
}

static void
test_file_errors(void **state)
{
	struct conf_mailbox list[] = {
		{ "alice", NULL, NULL, "/etc/mailstow/mailstow.yaml", 9 },
	};
	struct conf_mailbox *sentinel = (struct conf_mailbox *)(uintptr_t)0x5a;
	struct conf_mailbox *mb = sentinel;
	struct conf_profile p;
	struct conf_error err;
	size_t n = 77, n_warn = 77;
	char **warn = NULL, path[256];

	/* A file that cannot be read: an error naming it, nothing else. */
	mkprofile(&p, list, NELEM(list));
	assert_int_equal(conf_mailboxes_load(&p, &mb, &n, &warn, &n_warn,
	    &err), -ENOENT);
	assert_ptr_equal(mb, sentinel);
	assert_int_equal(n, 77);
	assert_null(warn);
	assert_int_equal(n_warn, 0);
	assert_non_null(strstr(err.text, csv));

	/* A directory. */
	tmp_path(path, sizeof path, "dir.csv");
	assert_int_equal(mkdir(path, 0700), 0);
	p.mailboxes_file = path;
	assert_true(conf_mailboxes_load(&p, &mb, &n, &warn, &n_warn,
	    &err) < 0);
	assert_ptr_equal(mb, sentinel);
	assert_non_null(strstr(err.text, path));
}

static void
test_many_mailboxes(void **state)
{
	const size_t max = 100000;
	struct conf_profile p;
	struct loaded l;
	char *buf, *q;
	clock_t t0;
	double cpu;
	size_t i;

	/* The limit: 100,000 mailboxes, the rest refused with a warning. */
	assert_non_null(buf = malloc((max + 2) * 10));
	for (i = 0, q = buf; i < max + 2; i++)
		q += sprintf(q, "m%07zu\n", i);
	mkprofile(&p, NULL, 0);
	write_file_len("mb.csv", buf, (size_t)(q - buf), 0644);
	free(buf);
	/*
	 * The file is read on the daemon's loop at the start of a run, so
	 * it must be quick: a list of 100,000 takes milliseconds with a
	 * hash or a sort to find the duplicates, and ten seconds of CPU
	 * when each line is compared with every earlier one.  The bound is
	 * CPU time, loose enough for sanitizers.
	 */
	t0 = clock();
	load(&p, &l);
	cpu = (double)(clock() - t0) / CLOCKS_PER_SEC;
	assert_int_equal(l.n, max);
	assert_string_equal(l.mb[max - 1].user, "m0099999");
	assert_int_equal(l.n_warn, 1);
	expect_warning(&l, 0, (unsigned)max + 1, "more than 100000 mailboxes");
	loaded_free(&l);
	if (cpu > 3.0)
		fail_msg("100,000 mailboxes took %.1f s of CPU to load", cpu);
}

static void
test_large_file(void **state)
{
	const size_t n = 60000;
	struct conf_profile p;
	struct loaded l;
	char *buf, *q;
	size_t i;

	/*
	 * 60,000 mailboxes of realistic length make a file of about 5 MB:
	 * more than a YAML config may have (4 MiB), but well inside what a
	 * mailbox list may hold (100,000 mailboxes).
	 */
	assert_non_null(buf = malloc(n * 128));
	for (i = 0, q = buf; i < n; i++)
		q += sprintf(q, "firstname.lastname%05zu@example.com,"
		    "lastname%05zu,/etc/mailstow/secrets/lastname%05zu\n",
		    i, i, i);
	assert_true((size_t)(q - buf) > (4u << 20));
	mkprofile(&p, NULL, 0);
	write_file_len("mb.csv", buf, (size_t)(q - buf), 0644);
	free(buf);
	load(&p, &l);
	assert_int_equal(l.n, n);
	assert_int_equal(l.n_warn, 0);
	assert_string_equal(l.mb[n - 1].archive_user, "lastname59999");
	loaded_free(&l);
}

static void
test_mailbox_password(void **state)
{
	struct conf_mailbox mb = { "erin", "erin", NULL, NULL, 3 };
	struct conf_profile p;
	struct conf_error err;
	char path[256], want[512], *pw = NULL;

	/* The password file of a listed mailbox, with the checks of
	 * conf_read_password(), and errors pointing at its line. */
	mkprofile(&p, NULL, 0);
	mb.source_file = csv;
	tmp_path(path, sizeof path, "erin.pw");
	mb.password_file = path;
	write_file_len("erin.pw", "hunter2\n", 8, 0600);
	assert_int_equal(conf_read_mailbox_password(&p, &mb, &pw, &err), 0);
	assert_string_equal(pw, "hunter2");
	secret_free(pw);
	pw = NULL;

	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(conf_read_mailbox_password(&p, &mb, &pw, &err),
	    -EPERM);
	assert_null(pw);
	snprintf(want, sizeof want, "%s:3: ", csv);
	assert_true(strncmp(err.text, want, strlen(want)) == 0);
	assert_non_null(strstr(err.text, "chmod 600"));
	assert_null(strstr(err.text, "hunter2"));

	unlink(path);
	assert_int_equal(conf_read_mailbox_password(&p, &mb, &pw, &err),
	    -ENOENT);
	assert_non_null(strstr(err.text, path));
}

int
main(void)
{
	const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_valid_batch),
		cmocka_unit_test(test_valid_multidrop),
		cmocka_unit_test(test_example_config),
		cmocka_unit_test(test_single_profile),
		cmocka_unit_test_setup_teardown(test_list_then_file, tmp_setup,
		    tmp_teardown),
		cmocka_unit_test_setup_teardown(test_empty_fields, tmp_setup,
		    tmp_teardown),
		cmocka_unit_test_setup_teardown(test_line_numbers, tmp_setup,
		    tmp_teardown),
		cmocka_unit_test_setup_teardown(test_malformed_lines, tmp_setup,
		    tmp_teardown),
		cmocka_unit_test_setup_teardown(test_duplicates, tmp_setup,
		    tmp_teardown),
		cmocka_unit_test_setup_teardown(test_only_comments, tmp_setup,
		    tmp_teardown),
		cmocka_unit_test_setup_teardown(test_file_errors, tmp_setup,
		    tmp_teardown),
		cmocka_unit_test_setup_teardown(test_many_mailboxes, tmp_setup,
		    tmp_teardown),
		cmocka_unit_test_setup_teardown(test_large_file, tmp_setup,
		    tmp_teardown),
		cmocka_unit_test_setup_teardown(test_mailbox_password,
		    tmp_setup, tmp_teardown),
	};
	struct CMUnitTest tests[NELEM(fixed) + NELEM(err_cases)];
	size_t i;

	find_srcdir();
	for (i = 0; i < NELEM(err_cases); i++) {
		memset(&tests[i], 0, sizeof tests[i]);
		tests[i].name = err_cases[i].file;
		tests[i].test_func = test_error_case;
		tests[i].initial_state = (void *)&err_cases[i];
	}
	memcpy(&tests[i], fixed, sizeof fixed);
	return _cmocka_run_group_tests("conf_batch", tests, NELEM(tests), NULL,
	    NULL);
}
