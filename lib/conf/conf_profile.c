/*
 * conf_profile.c - one entry of a profiles: list into a struct
 * conf_profile: its name, auth, folder patterns, schedule and size limit.
 * The rule that a password never crosses the wire in clear, and the
 * refusal of an inline password in a file others can read, live here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "conf_private.h"
#include "sched/sched.h"

#define CONF_NAME_MAX		64
#define CONF_CREDENTIAL_MAX	255
#define CONF_MSG_SIZE_DEFAULT	(256ULL << 20)
#define CONF_JITTER_MAX_MS	(60ULL * 60 * 1000)

static const char *const conf_profile_keys[] = {
	"name", "archive_user", "server", "auth", "folders", "schedule",
	"max_message_size", "mailboxes", "mailboxes_file", "max_parallel",
	"multidrop", "timezone", "jitter", "catch_up", NULL
};
static const char *const conf_auth_keys[] = {
	"user", "password_file", "password", "password_credential", "apop",
	"allow_plaintext", "master_user", "method", "separator", "oauth2",
	"mechanism", NULL
};
static const char *const conf_folders_keys[] = { "include", "exclude", NULL };

void
conf_profile_clear(struct conf_profile *p)
{
	free(p->name);
	free(p->archive_user);
	conf_server_clear(&p->server);
	free(p->auth.user);
	free(p->auth.password_file);
	secret_free(p->auth.password);
	free(p->auth.password_credential);
	conf_str_list_free(p->folders_include, p->n_folders_include);
	conf_str_list_free(p->folders_exclude, p->n_folders_exclude);
	free(p->schedule);
	free(p->timezone);
	free(p->source_file);
	free(p->auth.master_user);
	free(p->auth.separator);
	conf_oauth2_clear(&p->auth.oauth2);
	conf_mailboxes_free(p->mailboxes, p->n_mailboxes);
	free(p->mailboxes_file);
	conf_multidrop_clear(&p->multidrop);
	memset(p, 0, sizeof *p);
}

static bool
conf_name_ok(const char *s)
{
	size_t i, len = strlen(s);

	/* The name is used on command lines and in file names: no leading
	 * '-' or '.', nothing outside [A-Za-z0-9._-]. */
	if (len == 0 || len > CONF_NAME_MAX || s[0] == '-' || s[0] == '.')
		return false;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static int
conf_parse_name(struct conf_ctx *ctx, const struct conf_node *v,
    const char *path, const struct conf *c, struct conf_profile *p)
{
	char show[72];
	size_t i;
	int r;

	if ((r = conf_get_str(ctx, v, path, &p->name)) < 0)
		return r;
	conf_show(v, show, sizeof show);
	if (!conf_name_ok(p->name))
		return conf_errorf(ctx, v, path, -EINVAL,
		    "'%s' is not a valid profile name; use 1 to %d letters, "
		    "digits, '.', '_' or '-', starting with a letter or digit",
		    show, CONF_NAME_MAX);
	/* Linear, but bounded by CONF_MAX_PROFILES and cheap per step. */
	for (i = 0; &c->profiles[i] != p; i++)
		if (c->profiles[i].name != NULL &&
		    strcmp(c->profiles[i].name, p->name) == 0)
			return conf_errorf(ctx, v, path, -EINVAL,
			    "profile '%s' is already defined at %s:%u; "
			    "rename one of them", show,
			    c->profiles[i].source_file,
			    c->profiles[i].source_line);
	return 0;
}

static int
conf_auth_source(struct conf_ctx *ctx, const struct conf_node *m,
    const struct conf_node *at, const char *path)
{
	static const char *const src[] = {
		"password_file", "password", "password_credential"
	};
	const struct conf_node *first = NULL;
	char kp[CONF_MAX_PATH];
	size_t i;

	for (i = 0; i < NELEM(src); i++) {
		const struct conf_node *v = conf_map_get(m, src[i]);

		if (v == NULL)
			continue;
		if (first != NULL) {
			conf_path(kp, sizeof kp, path, src[i]);
			return conf_errorf(ctx, v, kp, -EINVAL,
			    "more than one password source; keep exactly "
			    "one of password_file, password and "
			    "password_credential");
		}
		first = v;
	}
	if (first == NULL)
		return conf_errorf(ctx, at, path, -EINVAL,
		    "no password source; add password_file: (recommended), "
		    "password_credential: or password:");
	return 0;
}

static int
conf_parse_inline(struct conf_ctx *ctx, const struct conf_node *v,
    const char *path, char **ret)
{
	int r;

	/* An archive run must not start from a file that lets other users
	 * read a password; check before copying it anywhere. */
	if (ctx->mode & 077)
		return conf_errorf(ctx, v, path, -EPERM,
		    "inline password in %s, which is readable by group or "
		    "others (mode %04o); chmod 600 %s or use password_file",
		    ctx->file, (unsigned)(ctx->mode & 07777), ctx->file);
	if ((r = conf_get_str(ctx, v, path, ret)) < 0)
		return r;
	return 0;
}

static int
conf_parse_credential(struct conf_ctx *ctx, const struct conf_node *v,
    const char *path, char **ret)
{
	char *s;
	int r;

	if ((r = conf_get_str(ctx, v, path, &s)) < 0)
		return r;
	if (strchr(s, '/') != NULL || strcmp(s, ".") == 0 ||
	    strcmp(s, "..") == 0 || strlen(s) > CONF_CREDENTIAL_MAX) {
		free(s);
		return conf_errorf(ctx, v, path, -EINVAL,
		    "not a credential name; give the name used in the "
		    "unit's LoadCredential=NAME:PATH, without any '/'");
	}
	*ret = s;
	return 0;
}

/* auth.master_user, auth.method, auth.separator (batch profiles). */
static int
conf_parse_master(struct conf_ctx *ctx, const struct conf_node *m,
    const char *path, struct conf_auth *a)
{
	const struct conf_node *v;
	char kp[CONF_MAX_PATH], *s;
	int r;

	conf_path(kp, sizeof kp, path, "master_user");
	if ((v = conf_map_get(m, "master_user")) != NULL &&
	    (r = conf_get_str(ctx, v, kp, &a->master_user)) < 0)
		return r;
	conf_path(kp, sizeof kp, path, "method");
	if ((v = conf_map_get(m, "method")) != NULL) {
		if ((r = conf_get_str(ctx, v, kp, &s)) < 0)
			return r;
		r = strcmp(s, "authzid") == 0 ? CONF_AUTH_AUTHZID :
		    strcmp(s, "separator") == 0 ? CONF_AUTH_SEPARATOR : -1;
		free(s);
		if (r < 0)
			return conf_errorf(ctx, v, kp, -EINVAL, "method is "
			    "authzid (SASL PLAIN on behalf of the mailbox) or "
			    "separator (\"user*master\" logins)");
		a->method = (enum conf_auth_method)r;
	}
	conf_path(kp, sizeof kp, path, "separator");
	if ((v = conf_map_get(m, "separator")) != NULL) {
		if ((r = conf_get_str(ctx, v, kp, &a->separator)) < 0)
			return r;
		if (strlen(a->separator) == 0 || strlen(a->separator) > 8)
			return conf_errorf(ctx, v, kp, -EINVAL, "separator is "
			    "1 to 8 characters; Dovecot's default is \"*\"");
	}
	if (a->master_user == NULL && (conf_map_get(m, "method") != NULL ||
	    conf_map_get(m, "separator") != NULL))
		return conf_errorf(ctx, m, path, -EINVAL, "method and "
		    "separator go with master_user; add master_user:");
	return 0;
}

static int
conf_parse_auth(struct conf_ctx *ctx, const struct conf_node *node,
    const char *path, struct conf_auth *a, bool batch)
{
	const struct conf_node *m, *v;
	char kp[CONF_MAX_PATH];
	int r;

	if ((r = conf_expect_map(ctx, node, path, "user, password_file, ...",
	    &m)) < 0 || (r = conf_check_keys(ctx, m, path, conf_auth_keys)) < 0)
		return r;
	if ((r = conf_parse_master(ctx, m, path, a)) < 0 ||
	    (r = conf_parse_oauth2(ctx, m, path, a)) < 0)
		return r;
	conf_path(kp, sizeof kp, path, "user");
	/* A master user without a batch gets its own, clearer error later. */
	if (!batch && a->master_user == NULL &&
	    (r = conf_require(ctx, m, node, path, "user", &v)) < 0)
		return r;
	if ((v = conf_map_get(m, "user")) != NULL &&
	    (r = conf_get_str(ctx, v, kp, &a->user)) < 0)
		return r;
	/* A batch without a master user has a password per mailbox. */
	if ((!batch || a->master_user != NULL) && !a->oauth2.enabled &&
	    (r = conf_auth_source(ctx, m, node, path)) < 0)
		return r;
	conf_path(kp, sizeof kp, path, "password_file");
	if ((v = conf_map_get(m, "password_file")) != NULL &&
	    (r = conf_get_abs_path(ctx, v, kp, &a->password_file)) < 0)
		return r;
	conf_path(kp, sizeof kp, path, "password");
	if ((v = conf_map_get(m, "password")) != NULL &&
	    (r = conf_parse_inline(ctx, v, kp, &a->password)) < 0)
		return r;
	conf_path(kp, sizeof kp, path, "password_credential");
	if ((v = conf_map_get(m, "password_credential")) != NULL &&
	    (r = conf_parse_credential(ctx, v, kp,
	    &a->password_credential)) < 0)
		return r;
	conf_path(kp, sizeof kp, path, "apop");
	if ((v = conf_map_get(m, "apop")) != NULL &&
	    (r = conf_get_bool(ctx, v, kp, &a->apop)) < 0)
		return r;
	conf_path(kp, sizeof kp, path, "allow_plaintext");
	if ((v = conf_map_get(m, "allow_plaintext")) != NULL &&
	    (r = conf_get_bool(ctx, v, kp, &a->allow_plaintext)) < 0)
		return r;
	return 0;
}

static int
conf_parse_folders(struct conf_ctx *ctx, const struct conf_node *node,
    const char *path, struct conf_profile *p)
{
	const struct conf_node *m, *v;
	char kp[CONF_MAX_PATH];
	int r;

	if (conf_protocol_is_pop3(p->server.protocol))
		return conf_errorf(ctx, node, path, -EINVAL,
		    "POP3 has no folders, only the inbox; remove folders: "
		    "from this profile");
	if ((r = conf_expect_map(ctx, node, path, "include, exclude", &m)) < 0 ||
	    (r = conf_check_keys(ctx, m, path, conf_folders_keys)) < 0)
		return r;
	conf_path(kp, sizeof kp, path, "include");
	if ((v = conf_map_get(m, "include")) != NULL) {
		if (v->type == CONF_NODE_SEQ && v->n == 0)
			return conf_errorf(ctx, v, kp, -EINVAL,
			    "an empty include list selects no folder; remove "
			    "include: to archive every folder");
		if ((r = conf_get_str_list(ctx, v, kp, &p->folders_include,
		    &p->n_folders_include)) < 0)
			return r;
	}
	conf_path(kp, sizeof kp, path, "exclude");
	if ((v = conf_map_get(m, "exclude")) != NULL &&
	    (r = conf_get_str_list(ctx, v, kp, &p->folders_exclude,
	    &p->n_folders_exclude)) < 0)
		return r;
	return 0;
}

static int
conf_parse_schedule(struct conf_ctx *ctx, const struct conf_node *v,
    const char *path, char **ret)
{
	char why[256], show[72], *s;
	struct sched *sc;
	int r;

	if ((r = conf_get_str(ctx, v, path, &s)) < 0)
		return r;
	if ((r = sched_parse(s, &sc, why, sizeof why)) < 0) {
		free(s);
		conf_show(v, show, sizeof show);
		if (r == -ENOMEM)
			return r;
		return conf_errorf(ctx, v, path, -EINVAL,
		    "'%s' is not a schedule: %s; write a cron line such as "
		    "\"*/30 * * * *\", @daily, \"every 15m\" or manual",
		    show, why);
	}
	sched_free(sc);
	*ret = s;
	return 0;
}

/* Checked against lib/sched's own zone reader, which the daemon uses: a
 * typo fails the load, not the first fire. */
static int
conf_parse_timezone(struct conf_ctx *ctx, const struct conf_node *v,
    const char *path, char **ret)
{
	char show[72], *s;
	int r;

	if ((r = conf_get_str(ctx, v, path, &s)) < 0)
		return r;
	if ((r = sched_zone_check(s)) < 0) {
		free(s);
		if (r == -ENOMEM)
			return r;
		conf_show(v, show, sizeof show);
		return conf_errorf(ctx, v, path, -EINVAL, "'%s' is not a time "
		    "zone of this system; give an IANA name such as "
		    "Europe/Berlin (timedatectl list-timezones shows them), "
		    "or remove timezone: to use the daemon's zone", show);
	}
	*ret = s;
	return 0;
}

/* Shorter than the schedule's period, so that a delayed fire never
 * reaches the next one; manual has no fires to delay. */
static int
conf_parse_jitter(struct conf_ctx *ctx, const struct conf_node *v,
    const char *path, struct conf_profile *p)
{
	char show[72], per[24];
	struct sched *sc;
	uint64_t s;
	int r;

	if ((r = conf_get_duration_ms(ctx, v, path, 0, CONF_JITTER_MAX_MS,
	    &p->jitter_ms)) < 0)
		return r;
	if ((r = sched_parse(p->schedule, &sc, NULL, 0)) < 0)
		return r;
	r = sched_period(sc, &s);
	sched_free(sc);
	if (r == -ENOENT || p->jitter_ms == 0)
		return 0;
	if (r < 0)
		return r;
	if (p->jitter_ms < s * 1000)
		return 0;
	conf_show(v, show, sizeof show);
	snprintf(per, sizeof per, s % 3600 == 0 ? "%lluh" : s % 60 == 0 ?
	    "%llum" : "%llus", (unsigned long long)(s % 3600 == 0 ? s / 3600 :
	    s % 60 == 0 ? s / 60 : s));
	return conf_errorf(ctx, v, path, -EINVAL, "%s is not shorter than "
	    "%s, the time between two fires of schedule \"%s\"; give a "
	    "shorter jitter", show, per, p->schedule);
}

/* timezone:, jitter: and catch_up: (after schedule:). */
static int
conf_parse_timing(struct conf_ctx *ctx, const struct conf_node *m,
    const char *path, struct conf_profile *p)
{
	const struct conf_node *v;
	char kp[CONF_MAX_PATH];
	int r;

	conf_path(kp, sizeof kp, path, "timezone");
	if ((v = conf_map_get(m, "timezone")) != NULL &&
	    (r = conf_parse_timezone(ctx, v, kp, &p->timezone)) < 0)
		return r;
	conf_path(kp, sizeof kp, path, "jitter");
	if ((v = conf_map_get(m, "jitter")) != NULL &&
	    (r = conf_parse_jitter(ctx, v, kp, p)) < 0)
		return r;
	p->catch_up = true;
	conf_path(kp, sizeof kp, path, "catch_up");
	if ((v = conf_map_get(m, "catch_up")) != NULL &&
	    (r = conf_get_bool(ctx, v, kp, &p->catch_up)) < 0)
		return r;
	return 0;
}

/* The plain-text rule: DESIGN "credentials never cross the wire in clear
 * unless a profile says so explicitly". */
static int
conf_check_plaintext(struct conf_ctx *ctx, const struct conf_node *server,
    const char *path, const struct conf_profile *p)
{
	const char *name = conf_protocol_name(p->server.protocol);
	char kp[CONF_MAX_PATH];

	if ((p->server.protocol != CONF_PROTO_IMAP &&
	    p->server.protocol != CONF_PROTO_POP3) || p->auth.allow_plaintext)
		return 0;
	conf_path(kp, sizeof kp, path, "server.protocol");
	return conf_errorf(ctx, conf_map_get(server, "protocol"), kp, -EINVAL,
	    "protocol %s sends the password in clear; use %ss or %s+starttls, "
	    "or set auth.allow_plaintext: true", name, name, name);
}

/* APOP (RFC 1939 7) is a POP3 command; on IMAP it would silently do
 * nothing, so say so. */
static int
conf_check_apop(struct conf_ctx *ctx, const struct conf_node *auth,
    const char *path, const struct conf_profile *p)
{
	char kp[CONF_MAX_PATH];

	if (!p->auth.apop || conf_protocol_is_pop3(p->server.protocol))
		return 0;
	conf_path(kp, sizeof kp, path, "auth.apop");
	return conf_errorf(ctx, conf_map_get(auth, "apop"), kp, -EINVAL,
	    "APOP is a POP3 login, and protocol %s is IMAP; remove apop:",
	    conf_protocol_name(p->server.protocol));
}

static int
conf_profile_rest(struct conf_ctx *ctx, const struct conf_node *m,
    const char *path, struct conf_profile *p)
{
	const struct conf_node *v;
	char kp[CONF_MAX_PATH];
	int r;

	conf_path(kp, sizeof kp, path, "archive_user");
	v = conf_map_get(m, "archive_user");
	if (v != NULL && (r = conf_get_str(ctx, v, kp, &p->archive_user)) < 0)
		return r;
	/* A batch names its archive users per mailbox; multidrop routes. */
	if (v == NULL && p->auth.user != NULL &&
	    conf_map_get(m, "multidrop") == NULL &&
	    (p->archive_user = strdup(p->auth.user)) == NULL)
		return -ENOMEM;
	conf_path(kp, sizeof kp, path, "folders");
	if ((v = conf_map_get(m, "folders")) != NULL &&
	    (r = conf_parse_folders(ctx, v, kp, p)) < 0)
		return r;
	conf_path(kp, sizeof kp, path, "schedule");
	v = conf_map_get(m, "schedule");
	if (v != NULL && (r = conf_parse_schedule(ctx, v, kp, &p->schedule)) < 0)
		return r;
	if (v == NULL && (p->schedule = strdup("manual")) == NULL)
		return -ENOMEM;
	if ((r = conf_parse_timing(ctx, m, path, p)) < 0)
		return r;
	p->max_message_size = CONF_MSG_SIZE_DEFAULT;
	conf_path(kp, sizeof kp, path, "max_message_size");
	if ((v = conf_map_get(m, "max_message_size")) != NULL &&
	    (r = conf_get_size(ctx, v, kp, &p->max_message_size)) < 0)
		return r;
	return 0;
}

static int
conf_parse_profile(struct conf_ctx *ctx, const struct conf_node *node,
    const char *path, struct conf *c, struct conf_profile *p)
{
	const struct conf_node *m, *v, *server;
	char kp[CONF_MAX_PATH];
	int r;

	if (node->type != CONF_NODE_MAP)
		return conf_errorf(ctx, node, path, -EINVAL,
		    "expected a profile (a mapping with name:, server:, "
		    "auth:), found %s; start it with '- name: ...'",
		    conf_node_kind(node));
	m = node;
	if ((p->source_file = strdup(ctx->file)) == NULL)
		return -ENOMEM;
	p->source_line = node->line;
	if ((r = conf_check_keys(ctx, m, path, conf_profile_keys)) < 0)
		return r;
	conf_path(kp, sizeof kp, path, "name");
	if ((r = conf_require(ctx, m, node, path, "name", &v)) < 0 ||
	    (r = conf_parse_name(ctx, v, kp, c, p)) < 0)
		return r;
	conf_path(kp, sizeof kp, path, "server");
	if ((r = conf_require(ctx, m, node, path, "server", &server)) < 0 ||
	    (r = conf_parse_server(ctx, server, kp, &p->server)) < 0)
		return r;
	conf_path(kp, sizeof kp, path, "auth");
	if ((r = conf_require(ctx, m, node, path, "auth", &v)) < 0 ||
	    (r = conf_parse_auth(ctx, v, kp, &p->auth,
	    conf_map_get(m, "mailboxes") != NULL ||
	    conf_map_get(m, "mailboxes_file") != NULL)) < 0)
		return r;
	if ((r = conf_check_apop(ctx, v, path, p)) < 0 ||
	    (r = conf_check_plaintext(ctx, server, path, p)) < 0 ||
	    (r = conf_parse_batch(ctx, m, path, p)) < 0 ||
	    (r = conf_check_oauth2(ctx, v, path, p)) < 0)
		return r;
	return conf_profile_rest(ctx, m, path, p);
}

int
conf_parse_profiles(struct conf_ctx *ctx, const struct conf_node *seq,
    struct conf *c)
{
	struct conf_profile *np;
	char kp[CONF_MAX_PATH];
	size_t i, total;
	int r;

	/* "profiles:" with every entry commented out: no profiles here. */
	if (conf_node_is_null(seq))
		return 0;
	if (seq->type != CONF_NODE_SEQ)
		return conf_errorf(ctx, seq, "profiles", -EINVAL,
		    "expected a list of profiles, found %s; start each "
		    "profile with '- name: ...'", conf_node_kind(seq));
	if (seq->n > CONF_MAX_PROFILES - c->n_profiles)
		return conf_errorf(ctx, seq, "profiles", -EINVAL,
		    "more than %u profiles in all; split the archive "
		    "across several configs", CONF_MAX_PROFILES);
	if (seq->n == 0)
		return 0;
	/* One allocation per file, not per profile. */
	total = c->n_profiles + seq->n;
	if ((np = reallocarray(c->profiles, total, sizeof *np)) == NULL)
		return -ENOMEM;
	c->profiles = np;
	for (i = 0; i < seq->n; i++) {
		struct conf_profile *p = &c->profiles[c->n_profiles++];

		memset(p, 0, sizeof *p);
		conf_path_index(kp, sizeof kp, "profiles", i);
		if ((r = conf_parse_profile(ctx, seq->items[i], kp, c, p)) < 0)
			return r;
	}
	return 0;
}
