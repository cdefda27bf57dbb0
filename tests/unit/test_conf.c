/*
 * test_conf.c - the config loader: every error path from a fixture of its
 * own (file, line, column and key path asserted), a full valid config and
 * the defaults, conf.d merging, the input bounds, folder patterns, and the
 * shipped example.  Password sources: test_conf_passwords.c.
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
	snprintf(buf, len, "%s/tests/unit/fixtures/conf/%s", srcdir, rel);
}

/* Load `path` expecting failure `code`; the text must start with
 * "PATH:POS: KEY: " and hold `what`.  *ret must stay untouched. */
static void
expect_error(const char *path, int code, const char *pos, const char *key,
    const char *what)
{
	struct conf *sentinel = (struct conf *)(uintptr_t)0x5a5a, *c = sentinel;
	struct conf_error err;
	char prefix[4096];
	int r;

	memset(&err, 'x', sizeof err);
	r = conf_load(path, &c, &err);
	if (pos != NULL)
		snprintf(prefix, sizeof prefix, "%s:%s: %s: ", path, pos, key);
	else
		snprintf(prefix, sizeof prefix, "%s: %s: ", path, key);
	if (r != code || c != sentinel ||
	    strncmp(err.text, prefix, strlen(prefix)) != 0 ||
	    strstr(err.text, what) == NULL)
		fail_msg("%s: r=%d (want %d)\n  got:  %s\n  want: %s...%s",
		    path, r, code, err.text, prefix, what);
}

/* The same for an error in another file than the one loaded (conf.d). */
static void
expect_error_at(const char *path, const char *file, const char *pos,
    const char *key, const char *what)
{
	struct conf_error err;
	struct conf *c = NULL;
	char prefix[4096];
	int r;

	r = conf_load(path, &c, &err);
	snprintf(prefix, sizeof prefix, "%s:%s: %s: ", file, pos, key);
	if (r != -EINVAL || c != NULL ||
	    strncmp(err.text, prefix, strlen(prefix)) != 0 ||
	    strstr(err.text, what) == NULL)
		fail_msg("%s: r=%d\n  got:  %s\n  want: %s...%s", path, r,
		    err.text, prefix, what);
}

struct err_case {
	const char	*file;		/* under fixtures/conf/errors/ */
	const char	*pos;		/* "LINE:COL" */
	const char	*key;		/* key path */
	const char	*what;		/* a phrase of the message */
};

static const struct err_case err_cases[] = {
	{ "alias.yaml", "8:5", "profiles[1]", "aliases (*name) are not allowed" },
	{ "apop_imap.yaml", "9:13", "profiles[0].auth.apop",
	    "APOP is a POP3 login, and protocol imaps is IMAP; remove apop:" },
	{ "bad_name.yaml", "4:11", "profiles[0].name",
	    "'alice smith' is not a valid profile name" },
	{ "bad_port.yaml", "8:13", "profiles[0].server.port",
	    "70000 is out of range; give a number from 1 to 65535" },
	{ "bad_protocol.yaml", "7:17", "profiles[0].server.protocol",
	    "unknown protocol 'imap4'; use one of imap, imaps, imap+starttls, "
	    "pop3, pop3s, pop3+starttls" },
	{ "bad_schedule.yaml", "7:15", "profiles[0].schedule",
	    "field 2 (hour): 25 is out of range 0-23" },
	{ "bad_size.yaml", "7:23", "profiles[0].max_message_size",
	    "'256 MB' is not a size" },
	{ "bad_utf8.yaml", "2:22", "(top level)", "not valid UTF-8" },
	{ "bool_quoted.yaml", "9:24", "profiles[0].auth.allow_plaintext",
	    "expected true or false, found 'true'" },
	{ "complex_key.yaml", "3:3", "(top level)", "a key must be a name" },
	{ "concurrent_zero.yaml", "4:24", "daemon.max_concurrent_runs",
	    "0 is out of range; give a number from 1 to 1024" },
	{ "control_char.yaml", "7:13", "profiles[0].auth.user",
	    "control character (0x0d)" },
	{ "credential_slash.yaml", "8:28",
	    "profiles[0].auth.password_credential", "without any '/'" },
	{ "daemon_list.yaml", "4:3", "daemon",
	    "expected a mapping of keys (max_concurrent_runs, control_socket), "
	    "found a list" },
	{ "duplicate_key.yaml", "8:7", "profiles[0].server.host",
	    "given twice (first on line 6); keep one" },
	{ "empty_file.yaml", "1:1", "archive",
	    "required key 'archive' is missing" },
	{ "empty_host.yaml", "6:12", "profiles[0].server.host",
	    "the value is empty" },
	{ "empty_include.yaml", "8:16", "profiles[0].folders.include",
	    "an empty include list selects no folder" },
	{ "fingerprint_bad.yaml", "9:22", "profiles[0].server.tls.fingerprint",
	    "64 hex digits" },
	{ "fingerprint_verify_false.yaml", "10:17",
	    "profiles[0].server.tls.verify",
	    "verify: false and a fingerprint contradict each other" },
	{ "host_url.yaml", "6:13", "profiles[0].server.host",
	    "not a host name" },
	{ "include_not_list.yaml", "8:16", "profiles[0].folders.include",
	    "expected a list, found a single value" },
	{ "missing_archive.yaml", "1:1", "archive",
	    "required key 'archive' is missing" },
	{ "missing_archive_path.yaml", "2:3", "archive.pth",
	    "unknown key 'pth'; did you mean 'path'?" },
	{ "missing_archive_path2.yaml", "2:10", "archive.path",
	    "required key 'path' is missing" },
	{ "missing_host.yaml", "6:7", "profiles[0].server.host",
	    "required key 'host' is missing" },
	{ "missing_name.yaml", "4:5", "profiles[0].name",
	    "required key 'name' is missing" },
	{ "missing_password.yaml", "7:7", "profiles[0].auth",
	    "no password source" },
	{ "missing_protocol.yaml", "6:7", "profiles[0].server.protocol",
	    "required key 'protocol' is missing" },
	{ "missing_server.yaml", "4:5", "profiles[0].server",
	    "required key 'server' is missing" },
	{ "missing_user.yaml", "7:7", "profiles[0].auth.user",
	    "required key 'user' is missing" },
	{ "plaintext_imap.yaml", "7:17", "profiles[0].server.protocol",
	    "protocol imap sends the password in clear; use imaps or "
	    "imap+starttls, or set auth.allow_plaintext: true" },
	{ "plaintext_pop3.yaml", "7:17", "profiles[0].server.protocol",
	    "protocol pop3 sends the password in clear; use pop3s or "
	    "pop3+starttls, or set auth.allow_plaintext: true" },
	{ "pop3_folders.yaml", "8:7", "profiles[0].folders",
	    "POP3 has no folders" },
	{ "port_quoted.yaml", "5:62", "profiles[0].server.port",
	    "write the number without quotes" },
	{ "port_zero.yaml", "5:62", "profiles[0].server.port",
	    "0 is out of range" },
	{ "profile_not_map.yaml", "4:5", "profiles[0]",
	    "expected a profile" },
	{ "profiles_not_list.yaml", "4:3", "profiles",
	    "expected a list of profiles, found a mapping" },
	{ "relative_path.yaml", "2:9", "archive.path",
	    "'var/lib/mailstow' is not an absolute path" },
	{ "root_list.yaml", "1:1", "(top level)",
	    "expected a mapping with archive:, daemon: and profiles:, found "
	    "a list" },
	{ "server_is_list.yaml", "5:13", "profiles[0].server",
	    "expected a mapping of keys (host, port, protocol, timeout, tls), "
	    "found a list" },
	{ "socket_too_long.yaml", "4:19", "daemon.control_socket",
	    "the limit of a unix socket path" },
	{ "syntax_error.yaml", "3:2", "(top level)", "YAML syntax error" },
	{ "tag.yaml", "2:9", "archive.path", "YAML tags (!...) are not "
	    "supported" },
	{ "timeout_range.yaml", "8:16", "profiles[0].server.timeout",
	    "2h is out of range; give a duration from 1s to 1h" },
	{ "timeout_unit.yaml", "8:16", "profiles[0].server.timeout",
	    "'60' is not a duration" },
	{ "tls_on_plain.yaml", "9:9", "profiles[0].server.tls",
	    "protocol imap does not use TLS" },
	{ "two_documents.yaml", "3:1", "(top level)",
	    "a second YAML document" },
	{ "two_passwords.yaml", "9:28", "profiles[0].auth.password_credential",
	    "more than one password source" },
	{ "unknown_key.yaml", "8:7", "profiles[0].server.protocl",
	    "unknown key 'protocl'; did you mean 'protocol'?" },
	{ "unknown_key_nosuggest.yaml", "9:7", "profiles[0].auth.frobnicate",
	    "unknown key 'frobnicate'; the keys allowed here are: user, "
	    "password_file, password, password_credential, apop, "
	    "allow_plaintext" },
	{ "unknown_key_top.yaml", "3:1", "profile",
	    "unknown key 'profile'; did you mean 'profiles'?" },
	{ "unquoted_star.yaml", "7:16", "profiles[0].schedule",
	    "a value that starts with '*' or '&' must be quoted" },
	{ "verify_false.yaml", "9:17", "profiles[0].server.tls.verify",
	    "or add insecure_i_know: true" },
	{ "verify_not_bool.yaml", "9:17", "profiles[0].server.tls.verify",
	    "expected true or false, found 'yes'" },
};

static void
test_error_case(void **state)
{
	const struct err_case *ec = *state;
	char path[4096], rel[256];

	snprintf(rel, sizeof rel, "errors/%s", ec->file);
	fixture(path, sizeof path, rel);
	expect_error(path, -EINVAL, ec->pos, ec->key, ec->what);
}

static void
test_deep_nesting(void **state)
{
	char path[4096], key[256] = "archive.path";
	int i;

	/* 2 mappings + 30 lists reach the limit of 32; the 31st list at
	 * column 39 is refused. */
	for (i = 0; i < 30; i++)
		strcat(key, "[0]");
	fixture(path, sizeof path, "errors/deep_nesting.yaml");
	expect_error(path, -EINVAL, "2:39", key, "nested deeper than 32");
}

/* --- valid configs --- */

static void
test_full_config(void **state)
{
	static const uint8_t fp[32] = {
		0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89,
		0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89,
		0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89,
		0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89,
	};
	const struct conf_profile *a, *b, *c3;
	struct conf_error err;
	struct conf *c;
	char path[4096];

	fixture(path, sizeof path, "valid/full.yaml");
	if (conf_load(path, &c, &err) != 0)
		fail_msg("%s", err.text);
	assert_string_equal(c->path, path);
	assert_string_equal(c->archive_path, "/srv/mailstow/archive");
	assert_int_equal(c->daemon.max_concurrent_runs, 3);
	assert_string_equal(c->daemon.control_socket,
	    "/run/mailstow-test/control");
	assert_int_equal(c->n_profiles, 3);

	a = conf_find_profile(c, "alice");
	assert_ptr_equal(a, &c->profiles[0]);
	assert_string_equal(a->archive_user, "alice-archive");
	assert_string_equal(a->server.host, "imap.example.com");
	assert_int_equal(a->server.port, 10993);
	assert_int_equal(a->server.protocol, CONF_PROTO_IMAPS);
	assert_int_equal(a->server.timeout_ms, 90000);
	assert_string_equal(a->server.tls.ca_file, "/etc/mailstow/ca.pem");
	assert_string_equal(a->server.tls.server_name, "mail.example.net");
	assert_true(a->server.tls.has_fingerprint);
	assert_memory_equal(a->server.tls.fingerprint, fp, 32);
	assert_true(a->server.tls.verify);
	assert_false(a->server.tls.insecure_i_know);
	assert_string_equal(a->auth.user, "alice@example.com");
	assert_string_equal(a->auth.password_file,
	    "/etc/mailstow/secrets/alice");
	assert_null(a->auth.password);
	assert_null(a->auth.password_credential);
	assert_false(a->auth.allow_plaintext);
	assert_false(a->auth.apop);
	assert_int_equal(a->n_folders_include, 2);
	assert_string_equal(a->folders_include[0], "INBOX");
	assert_string_equal(a->folders_include[1], "Archive/*");
	assert_int_equal(a->n_folders_exclude, 2);
	assert_string_equal(a->folders_exclude[1], "Junk*");
	assert_string_equal(a->schedule, "*/30 8-18 * * mon-fri");
	assert_int_equal(a->max_message_size, 64ULL << 20);
	assert_string_equal(a->source_file, path);
	assert_int_equal(a->source_line, 8);

	b = conf_find_profile(c, "bob.pop");
	assert_non_null(b);
	assert_string_equal(b->archive_user, "bob");
	assert_int_equal(b->server.protocol, CONF_PROTO_POP3_STARTTLS);
	assert_int_equal(b->server.port, 110);
	assert_false(b->server.tls.verify);
	assert_true(b->server.tls.insecure_i_know);
	assert_false(b->server.tls.has_fingerprint);
	assert_string_equal(b->auth.password_credential, "bob-pop");
	assert_true(b->auth.apop);
	assert_string_equal(b->schedule, "every 15m");
	assert_int_equal(b->n_folders_include, 0);

	c3 = conf_find_profile(c, "carol_1");
	assert_non_null(c3);
	assert_string_equal(c3->server.host, "::1");
	assert_int_equal(c3->server.protocol, CONF_PROTO_IMAP);
	assert_int_equal(c3->server.port, 143);
	assert_true(c3->auth.allow_plaintext);
	assert_string_equal(c3->schedule, "@daily");
	assert_null(conf_find_profile(c, "nobody"));
	assert_null(conf_find_profile(c, "Alice"));
	conf_free(c);
}

static void
test_defaults(void **state)
{
	static const struct {
		const char *proto;
		enum conf_protocol p;
		unsigned port;
	} protos[] = {
		{ "imap", CONF_PROTO_IMAP, 143 },
		{ "imaps", CONF_PROTO_IMAPS, 993 },
		{ "imap+starttls", CONF_PROTO_IMAP_STARTTLS, 143 },
		{ "pop3", CONF_PROTO_POP3, 110 },
		{ "pop3s", CONF_PROTO_POP3S, 995 },
		{ "pop3+starttls", CONF_PROTO_POP3_STARTTLS, 110 },
	};
	char text[4096], line[512];
	struct conf_error err;
	struct conf *c;
	size_t i;

	snprintf(text, sizeof text, "archive: {path: /a}\nprofiles:\n");
	for (i = 0; i < NELEM(protos); i++) {
		snprintf(line, sizeof line, "  - name: p%zu\n    server: {host: "
		    "h, protocol: %s}\n    auth: {user: u%zu, password_file: /p, "
		    "allow_plaintext: true}\n", i, protos[i].proto, i);
		strcat(text, line);
	}
	write_file("defaults.yaml", text, 0644);
	if (load_tmp("defaults.yaml", &c, &err) != 0)
		fail_msg("%s", err.text);
	assert_int_equal(c->daemon.max_concurrent_runs, 8);
	assert_string_equal(c->daemon.control_socket, "/run/mailstow/control");
	assert_int_equal(c->n_profiles, NELEM(protos));
	for (i = 0; i < NELEM(protos); i++) {
		const struct conf_profile *p = &c->profiles[i];

		assert_int_equal(p->server.protocol, protos[i].p);
		assert_int_equal(p->server.port, protos[i].port);
		assert_string_equal(conf_protocol_name(p->server.protocol),
		    protos[i].proto);
		assert_int_equal(conf_protocol_is_pop3(p->server.protocol),
		    i >= 3);
		assert_int_equal(p->server.timeout_ms, 60000);
		assert_true(p->server.tls.verify);
		assert_false(p->server.tls.has_fingerprint);
		assert_null(p->server.tls.ca_file);
		assert_string_equal(p->schedule, "manual");
		assert_int_equal(p->max_message_size, 256ULL << 20);
		assert_string_equal(p->archive_user, p->auth.user);
		assert_null(p->folders_include);
		assert_int_equal(p->n_folders_include, 0);
		assert_int_equal(p->n_folders_exclude, 0);
	}
	conf_free(c);
}

static void
test_commented_out_sections(void **state)
{
	struct conf_error err;
	struct conf *c;

	/* Sections whose every key is commented out are empty, not errors. */
	write_file("empty.yaml", "archive:\n  path: /a\ndaemon:\n"
	    "#  max_concurrent_runs: 2\nprofiles:\n#  - name: x\n", 0644);
	if (load_tmp("empty.yaml", &c, &err) != 0)
		fail_msg("%s", err.text);
	assert_int_equal(c->n_profiles, 0);
	assert_int_equal(c->daemon.max_concurrent_runs, 8);
	conf_free(c);
}

static void
test_example_config(void **state)
{
	struct conf_error err;
	struct conf *c;
	char path[4096];
	size_t i;

	/* The documented example must load as shipped. */
	snprintf(path, sizeof path, "%s/conf/mailstow.yaml", srcdir);
	if (conf_load(path, &c, &err) != 0)
		fail_msg("%s", err.text);
	assert_string_equal(c->archive_path, "/var/lib/mailstow");
	assert_true(c->n_profiles >= 3);
	for (i = 0; i < c->n_profiles; i++) {
		/* No inline password in a file installed 0640. */
		assert_null(c->profiles[i].auth.password);
		assert_false(c->profiles[i].server.tls.insecure_i_know);
	}
	conf_free(c);
}

/* --- conf.d --- */

static void
test_confd_merge(void **state)
{
	static const char *const names[] = { "main", "first", "second", "third" };
	struct conf_error err;
	struct conf *c;
	char path[4096], want[4096];
	size_t i;

	fixture(path, sizeof path, "confd_ok/mailstow.yaml");
	if (conf_load(path, &c, &err) != 0)
		fail_msg("%s", err.text);
	/* Main file first, then conf.d by name; hidden, *.txt and *~ files
	 * (all invalid YAML) are not read. */
	assert_int_equal(c->n_profiles, NELEM(names));
	for (i = 0; i < NELEM(names); i++)
		assert_string_equal(c->profiles[i].name, names[i]);
	fixture(want, sizeof want, "confd_ok/conf.d/20-second.yaml");
	assert_string_equal(c->profiles[2].source_file, want);
	assert_int_equal(c->profiles[2].source_line, 2);
	assert_int_equal(c->profiles[3].server.protocol, CONF_PROTO_POP3S);
	assert_string_equal(c->profiles[0].source_file, path);
	conf_free(c);
}

static void
test_confd_errors(void **state)
{
	char path[4096], file[4096], want[4200];

	fixture(path, sizeof path, "confd_dup/mailstow.yaml");
	fixture(file, sizeof file, "confd_dup/conf.d/alice.yaml");
	snprintf(want, sizeof want, "profile 'alice' is already defined at "
	    "%s:4; rename one of them", path);
	expect_error_at(path, file, "2:11", "profiles[0].name", want);

	fixture(path, sizeof path, "confd_archive/mailstow.yaml");
	fixture(file, sizeof file, "confd_archive/conf.d/extra.yaml");
	snprintf(want, sizeof want, "a conf.d file may only hold profiles:; "
	    "move archive: to %s", path);
	expect_error_at(path, file, "1:1", "archive", want);

	fixture(path, sizeof path, "confd_unknown/mailstow.yaml");
	fixture(file, sizeof file, "confd_unknown/conf.d/extra.yaml");
	expect_error_at(path, file, "1:1", "profile",
	    "unknown key 'profile'; did you mean 'profiles'?");
}

static void
test_confd_not_dir(void **state)
{
	struct conf_error err;
	struct conf *c = NULL;

	write_file("main.yaml", "archive: {path: /a}\n", 0644);
	write_file("conf.d", "not a directory\n", 0644);
	assert_int_equal(load_tmp("main.yaml", &c, &err), -ENOTDIR);
	assert_null(c);
	assert_non_null(strstr(err.text, "/conf.d: cannot open the directory"));
}

/* --- files and bounds --- */

static void
test_file_errors(void **state)
{
	struct conf_error err;
	struct conf *c = NULL;
	char path[256];

	tmp_path(path, sizeof path, "missing.yaml");
	assert_int_equal(conf_load(path, &c, &err), -ENOENT);
	assert_null(c);
	assert_non_null(strstr(err.text, path));
	assert_non_null(strstr(err.text, "cannot open"));

	/* A directory given as the config. */
	assert_int_equal(conf_load(tmpdir, &c, &err), -EINVAL);
	assert_non_null(strstr(err.text, "not a regular file"));

	assert_int_equal(conf_load("", &c, &err), -EINVAL);
	assert_null(c);
}

static void
test_bounds(void **state)
{
	struct conf_error err;
	struct conf *c = NULL;
	size_t big = (4u << 20) + 1, i;
	char *buf, *p;

	/* A string one byte over 4096. */
	assert_non_null(buf = malloc(big + 64));
	strcpy(buf, "archive:\n  path: /");
	memset(buf + strlen(buf), 'a', 4096);
	strcpy(buf + 18 + 4096, "\n");
	write_file("long.yaml", buf, 0644);
	assert_int_equal(load_tmp("long.yaml", &c, &err), -EINVAL);
	assert_non_null(strstr(err.text, "long.yaml:2:9: archive.path: value "
	    "longer than 4096 bytes"));

	/* 10,001 profiles: refused before any of them is looked at. */
	strcpy(buf, "archive: {path: /a}\nprofiles:\n");
	for (i = 0, p = buf + strlen(buf); i < 10001; i++, p += 6)
		memcpy(p, "  - x\n", 6);
	*p = '\0';
	write_file("many.yaml", buf, 0644);
	assert_int_equal(load_tmp("many.yaml", &c, &err), -EINVAL);
	assert_non_null(strstr(err.text, "many.yaml:3:3: profiles: more than "
	    "10000 profiles"));

	/* A million and one values in 2 MB. */
	strcpy(buf, "x: [");
	for (i = 0; i < 1000001; i++)
		memcpy(buf + 4 + 2 * i, "0,", 2);
	strcpy(buf + 4 + 2 * i, "]\n");
	write_file("nodes.yaml", buf, 0644);
	assert_int_equal(load_tmp("nodes.yaml", &c, &err), -EINVAL);
	assert_non_null(strstr(err.text, "more than 1000000 values"));

	/* A file over 4 MiB, though it is only a comment. */
	memset(buf, '#', big);
	write_file_len("huge.yaml", buf, big, 0644);
	assert_int_equal(load_tmp("huge.yaml", &c, &err), -EINVAL);
	assert_non_null(strstr(err.text, "huge.yaml: larger than 4194304 "
	    "bytes"));
	assert_null(c);
	free(buf);
}

/* --- folder patterns --- */

static void
test_glob(void **state)
{
	static const struct {
		const char *pat, *name;
		char delim;
		bool want;
	} t[] = {
		{ "*", "a/b/c", '/', true },
		{ "*", "", '/', true },
		{ "%", "", '/', true },
		{ "", "", '/', true },
		{ "", "a", '/', false },
		{ "%", "INBOX", '/', true },
		{ "%", "a/b", '/', false },
		{ "%", "a/b", 0, true },
		{ "Archive/*", "Archive/2024/Jan", '/', true },
		{ "Archive/*", "Archive", '/', false },
		{ "Archive/%", "Archive/2024", '/', true },
		{ "Archive/%", "Archive/2024/Jan", '/', false },
		{ "Archive/%/Jan", "Archive/2024/Jan", '/', true },
		{ "INBOX.%", "INBOX.a.b", '.', false },
		{ "Trash", "Trash", '/', true },
		{ "Trash", "Trash/old", '/', false },
		{ "Trash*", "Trash/old", '/', true },
		{ "trash", "Trash", '/', false },
		{ "inbox", "INBOX", '/', true },
		{ "INBOX", "inbox", '/', true },
		{ "INBOX", "Inbox", '/', true },
		{ "inbox/sub", "INBOX/sub", '/', true },
		{ "INBOX/Sub", "INBOX/sub", '/', false },
		{ "inbox*", "INBOX.Drafts", '.', true },
		{ "inbox*", "INBOX", '/', true },
		{ "inboxes", "INBOXES", '/', false },
		{ "INBOX", "INBOXES", '/', false },
		{ "a*b*c", "aXXbYYc", '/', true },
		{ "a*b*c", "aXXbYY", '/', false },
		{ "a*b", "ab", '/', true },
		{ "*%*", "x/y", '/', true },
		{ "%b", "a/b", '/', false },
		{ "Entw%rfe", "Entw\xc3\xbcrfe", '/', true },
		{ "Entwürfe", "Entwürfe", '/', true },
		{ "Entwurfe", "Entwürfe", '/', false },
	};
	char name[5001], pat[64] = "";
	size_t i;

	for (i = 0; i < NELEM(t); i++)
		if (conf_glob_match(t[i].pat, t[i].name, t[i].delim) != t[i].want)
			fail_msg("conf_glob_match(\"%s\", \"%s\", '%c') != %d",
			    t[i].pat, t[i].name, t[i].delim ? t[i].delim : '0',
			    t[i].want);
	/* The pattern that makes backtracking matchers take forever. */
	memset(name, 'a', 5000);
	name[5000] = '\0';
	for (i = 0; i < 20; i++)
		strcat(pat, "*a");
	strcat(pat, "*b");
	assert_false(conf_glob_match(pat, name, '/'));
	name[4999] = 'b';
	assert_true(conf_glob_match(pat, name, '/'));
	assert_false(conf_glob_match(NULL, "a", '/'));
}

static void
test_folder_selected(void **state)
{
	char *inc[] = { "INBOX", "Archive/*" };
	char *exc[] = { "Archive/Spam" };
	char *exc2[] = { "Trash", "Junk*" };
	struct conf_profile p;

	memset(&p, 0, sizeof p);
	p.folders_include = inc;
	p.n_folders_include = NELEM(inc);
	p.folders_exclude = exc;
	p.n_folders_exclude = NELEM(exc);
	assert_true(conf_folder_selected(&p, "INBOX", '/'));
	assert_true(conf_folder_selected(&p, "inbox", '/'));
	assert_true(conf_folder_selected(&p, "Archive/2024", '/'));
	assert_false(conf_folder_selected(&p, "Archive/Spam", '/'));
	assert_false(conf_folder_selected(&p, "Sent", '/'));

	memset(&p, 0, sizeof p);
	p.folders_exclude = exc2;
	p.n_folders_exclude = NELEM(exc2);
	assert_true(conf_folder_selected(&p, "Sent", '/'));
	assert_false(conf_folder_selected(&p, "Trash", '/'));
	/* Exact glob semantics: "Trash" does not cover its children. */
	assert_true(conf_folder_selected(&p, "Trash/old", '/'));
	assert_false(conf_folder_selected(&p, "Junk/old", '/'));
	assert_false(conf_folder_selected(&p, "Junk", '/'));
}

static void
test_protocol_names(void **state)
{
	assert_string_equal(conf_protocol_name(CONF_PROTO_IMAP_STARTTLS),
	    "imap+starttls");
	assert_string_equal(conf_protocol_name(CONF_PROTO_POP3S), "pop3s");
	assert_string_equal(conf_protocol_name(_CONF_PROTO_MAX), "unknown");
	assert_false(conf_protocol_is_pop3(CONF_PROTO_IMAPS));
	assert_true(conf_protocol_is_pop3(CONF_PROTO_POP3_STARTTLS));
}

int
main(void)
{
	const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_full_config),
		cmocka_unit_test(test_confd_merge),
		cmocka_unit_test(test_confd_errors),
		cmocka_unit_test(test_example_config),
		cmocka_unit_test(test_glob),
		cmocka_unit_test(test_folder_selected),
		cmocka_unit_test(test_protocol_names),
		cmocka_unit_test_setup_teardown(test_defaults, tmp_setup,
		    tmp_teardown),
		cmocka_unit_test_setup_teardown(test_commented_out_sections,
		    tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_confd_not_dir, tmp_setup,
		    tmp_teardown),
		cmocka_unit_test_setup_teardown(test_file_errors, tmp_setup,
		    tmp_teardown),
		cmocka_unit_test_setup_teardown(test_bounds, tmp_setup,
		    tmp_teardown),
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
	return _cmocka_run_group_tests("conf", tests, NELEM(tests), NULL,
	    NULL);
}