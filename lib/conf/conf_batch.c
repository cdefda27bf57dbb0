/*
 * conf_batch.c - the keys of a profile that archives more than one person:
 * `mailboxes:` and `mailboxes_file` (a batch logged in one by one or by a
 * master user), `max_parallel`, and `multidrop:` (one catch-all mailbox
 * routed to many archive users).  mailboxes_file is read at every run, so
 * its errors are per line and never stop the other mailboxes.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "conf/conf_private.h"

#define CONF_MAX_MAILBOXES	100000
#define CONF_MAILBOXES_FILE_MAX	(16u << 20)
#define CONF_USER_MAX		320

static ssize_t *conf_mb_dups(const struct conf_mailbox *, size_t);

static const char *const conf_mailbox_keys[] = {
	"user", "archive_user", "password_file", NULL
};
static const char *const conf_multidrop_keys[] = {
	"headers", "fall_back_to", "local_domains", "recipients",
	"strip_detail", "unknown", "use_received", NULL
};
static const char *const conf_default_headers[] = {
	"Delivered-To", "X-Original-To", "X-Envelope-To", "Envelope-To",
};
static const char *const conf_default_fallback[] = {
	"To", "Cc", "Bcc", "Resent-To", "Resent-Cc",
};

void
conf_mailboxes_free(struct conf_mailbox *mb, size_t n)
{
	size_t i;

	for (i = 0; i < n && mb != NULL; i++) {
		free(mb[i].user);
		free(mb[i].archive_user);
		free(mb[i].password_file);
		free(mb[i].source_file);
	}
	free(mb);
}

void
conf_strings_free(char **v, size_t n)
{
	conf_str_list_free(v, n);
}

void
conf_multidrop_clear(struct conf_multidrop *md)
{
	size_t i;

	conf_str_list_free(md->headers, md->n_headers);
	conf_str_list_free(md->fall_back_to, md->n_fall_back_to);
	conf_str_list_free(md->local_domains, md->n_local_domains);
	for (i = 0; i < md->n_recipients; i++) {
		free(md->recipients[i].pattern);
		free(md->recipients[i].user);
	}
	free(md->recipients);
	free(md->unknown);
	memset(md, 0, sizeof *md);
}

static int
conf_mailbox_parse(struct conf_ctx *ctx, const struct conf_node *node,
    const char *path, struct conf_mailbox *mb)
{
	const struct conf_node *v;
	char kp[CONF_MAX_PATH];
	int r;

	if ((r = conf_expect_map(ctx, node, path, "user, archive_user, "
	    "password_file", &v)) < 0 ||
	    (r = conf_check_keys(ctx, node, path, conf_mailbox_keys)) < 0)
		return r;
	if ((mb->source_file = strdup(ctx->file)) == NULL)
		return -ENOMEM;
	mb->source_line = node->line;
	conf_path(kp, sizeof kp, path, "user");
	if ((r = conf_require(ctx, node, node, path, "user", &v)) < 0 ||
	    (r = conf_get_str(ctx, v, kp, &mb->user)) < 0)
		return r;
	conf_path(kp, sizeof kp, path, "archive_user");
	if ((v = conf_map_get(node, "archive_user")) != NULL &&
	    (r = conf_get_str(ctx, v, kp, &mb->archive_user)) < 0)
		return r;
	conf_path(kp, sizeof kp, path, "password_file");
	if ((v = conf_map_get(node, "password_file")) != NULL &&
	    (r = conf_get_abs_path(ctx, v, kp, &mb->password_file)) < 0)
		return r;
	if (mb->archive_user == NULL &&
	    (mb->archive_user = strdup(mb->user)) == NULL)
		return -ENOMEM;
	return 0;
}

/* A mailbox listed twice would run two sessions on it: an error. */
static int
conf_mailboxes_unique(struct conf_ctx *ctx, const struct conf_node *seq,
    const char *path, const struct conf_profile *p)
{
	char kp[CONF_MAX_PATH], up[CONF_MAX_PATH];
	ssize_t *first;
	size_t i;
	int r = 0;

	if ((first = conf_mb_dups(p->mailboxes, p->n_mailboxes)) == NULL)
		return -ENOMEM;
	for (i = 0; i < p->n_mailboxes && r == 0; i++) {
		if (first[i] < 0)
			continue;
		conf_path_index(kp, sizeof kp, path, i);
		conf_path(up, sizeof up, kp, "user");
		r = conf_errorf(ctx, conf_map_get(seq->items[i], "user"), up,
		    -EINVAL, "mailbox %s is listed twice (also at line %u); "
		    "remove one", p->mailboxes[i].user,
		    p->mailboxes[first[i]].source_line);
	}
	free(first);
	return r;
}

static int
conf_parse_mailboxes(struct conf_ctx *ctx, const struct conf_node *seq,
    const char *path, struct conf_profile *p)
{
	char kp[CONF_MAX_PATH];
	size_t i;
	int r;

	if (seq->type != CONF_NODE_SEQ || seq->n == 0)
		return conf_errorf(ctx, seq, path, -EINVAL, "expected a list of "
		    "mailboxes ('- user: alice@example.com'), found %s",
		    conf_node_kind(seq));
	if (seq->n > CONF_MAX_MAILBOXES)
		return conf_errorf(ctx, seq, path, -EINVAL, "more than %u "
		    "mailboxes; use mailboxes_file", CONF_MAX_MAILBOXES);
	if ((p->mailboxes = calloc(seq->n, sizeof *p->mailboxes)) == NULL)
		return -ENOMEM;
	for (i = 0; i < seq->n; i++) {
		p->n_mailboxes++;
		conf_path_index(kp, sizeof kp, path, i);
		if ((r = conf_mailbox_parse(ctx, seq->items[i], kp,
		    &p->mailboxes[i])) < 0)
			return r;
		if (p->auth.master_user == NULL && !p->auth.oauth2.enabled &&
		    p->mailboxes[i].password_file == NULL &&
		    p->auth.password_file == NULL && p->auth.password == NULL &&
		    p->auth.password_credential == NULL)
			return conf_errorf(ctx, seq->items[i], kp, -EINVAL,
			    "no password for this mailbox; give it a "
			    "password_file:, or set auth.master_user");
	}
	return conf_mailboxes_unique(ctx, seq, path, p);
}

static int
conf_parse_routes(struct conf_ctx *ctx, const struct conf_node *m,
    const char *path, struct conf_multidrop *md)
{
	char kp[CONF_MAX_PATH];
	size_t i;
	int r;

	if (m->type != CONF_NODE_MAP)
		return conf_errorf(ctx, m, path, -EINVAL, "expected a mapping "
		    "of address patterns to archive users "
		    "('\"sales-*@example.com\": sales'), found %s",
		    conf_node_kind(m));
	if (m->n == 0)
		return 0;
	if ((md->recipients = calloc(m->n, sizeof *md->recipients)) == NULL)
		return -ENOMEM;
	for (i = 0; i < m->n; i++) {
		struct conf_route *rt = &md->recipients[md->n_recipients++];

		conf_path(kp, sizeof kp, path, m->pairs[i].key->str);
		if ((rt->pattern = strdup(m->pairs[i].key->str)) == NULL)
			return -ENOMEM;
		if ((r = conf_get_str(ctx, m->pairs[i].value, kp,
		    &rt->user)) < 0)
			return r;
	}
	return 0;
}

static int
conf_default_list(const char *const *def, size_t n, char ***ret, size_t *ret_n)
{
	size_t i;

	if ((*ret = calloc(n, sizeof **ret)) == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		if (((*ret)[i] = strdup(def[i])) == NULL)
			return -ENOMEM;
	*ret_n = n;
	return 0;
}

static int
conf_md_list(struct conf_ctx *ctx, const struct conf_node *m,
    const char *path, const char *key, const char *const *def, size_t n_def,
    char ***ret, size_t *ret_n)
{
	const struct conf_node *v = conf_map_get(m, key);
	char kp[CONF_MAX_PATH];

	conf_path(kp, sizeof kp, path, key);
	if (v != NULL)
		return conf_get_str_list(ctx, v, kp, ret, ret_n);
	if (def == NULL)
		return 0;
	return conf_default_list(def, n_def, ret, ret_n);
}

static int
conf_md_detail(struct conf_ctx *ctx, const struct conf_node *v,
    const char *path, struct conf_multidrop *md)
{
	char *s;
	int r;

	if ((r = conf_get_str(ctx, v, path, &s)) < 0)
		return r;
	if (strlen(s) != 1 || s[0] == '@') {
		free(s);
		return conf_errorf(ctx, v, path, -EINVAL, "strip_detail is one "
		    "character, such as \"+\" or \"-\"");
	}
	md->strip_detail = s[0];
	free(s);
	return 0;
}

static int
conf_parse_multidrop(struct conf_ctx *ctx, const struct conf_node *m,
    const char *path, struct conf_profile *p)
{
	struct conf_multidrop *md = &p->multidrop;
	const struct conf_node *v;
	char kp[CONF_MAX_PATH];
	int r;

	if ((r = conf_expect_map(ctx, m, path, "local_domains, recipients, "
	    "unknown, ...", &v)) < 0 ||
	    (r = conf_check_keys(ctx, m, path, conf_multidrop_keys)) < 0)
		return r;
	md->enabled = true;
	if ((r = conf_md_list(ctx, m, path, "headers", conf_default_headers,
	    NELEM(conf_default_headers), &md->headers, &md->n_headers)) < 0 ||
	    (r = conf_md_list(ctx, m, path, "fall_back_to",
	    conf_default_fallback, NELEM(conf_default_fallback),
	    &md->fall_back_to, &md->n_fall_back_to)) < 0 ||
	    (r = conf_md_list(ctx, m, path, "local_domains", NULL, 0,
	    &md->local_domains, &md->n_local_domains)) < 0)
		return r;
	conf_path(kp, sizeof kp, path, "recipients");
	if ((v = conf_map_get(m, "recipients")) != NULL &&
	    (r = conf_parse_routes(ctx, v, kp, md)) < 0)
		return r;
	conf_path(kp, sizeof kp, path, "strip_detail");
	if ((v = conf_map_get(m, "strip_detail")) != NULL &&
	    (r = conf_md_detail(ctx, v, kp, md)) < 0)
		return r;
	conf_path(kp, sizeof kp, path, "use_received");
	if ((v = conf_map_get(m, "use_received")) != NULL &&
	    (r = conf_get_bool(ctx, v, kp, &md->use_received)) < 0)
		return r;
	conf_path(kp, sizeof kp, path, "unknown");
	if ((v = conf_map_get(m, "unknown")) != NULL) {
		if ((r = conf_get_str(ctx, v, kp, &md->unknown)) < 0)
			return r;
		if (strcmp(md->unknown, "skip") == 0) {
			free(md->unknown);
			md->unknown = NULL;
		}
	} else if ((md->unknown = strdup(p->auth.user)) == NULL) {
		/* Nothing is lost by default: strangers stay in the catch-all's
		 * own archive. */
		return -ENOMEM;
	}
	return 0;
}

/*
 * Called after server: and auth: are parsed.  Also decides the rules that
 * tie the keys together (batch vs single vs multidrop).
 */
int
conf_parse_batch(struct conf_ctx *ctx, const struct conf_node *m,
    const char *path, struct conf_profile *p)
{
	const struct conf_node *v, *mb = conf_map_get(m, "mailboxes");
	const struct conf_node *mf = conf_map_get(m, "mailboxes_file");
	const struct conf_node *md = conf_map_get(m, "multidrop");
	char kp[CONF_MAX_PATH];
	int r;

	p->max_parallel = 4;
	conf_path(kp, sizeof kp, path, "max_parallel");
	if ((v = conf_map_get(m, "max_parallel")) != NULL &&
	    (r = conf_get_u32(ctx, v, kp, 1, 64, &p->max_parallel)) < 0)
		return r;
	conf_path(kp, sizeof kp, path, mb != NULL ? "mailboxes" :
	    "mailboxes_file");
	if ((mb != NULL || mf != NULL) && p->auth.user != NULL)
		return conf_errorf(ctx, mb != NULL ? mb : mf, kp, -EINVAL,
		    "a profile archives either auth.user or a list of "
		    "mailboxes; remove one of them");
	if (p->auth.master_user != NULL && mb == NULL && mf == NULL)
		return conf_errorf(ctx, m, path, -EINVAL, "auth.master_user "
		    "logs in on behalf of a batch; add mailboxes: or "
		    "mailboxes_file:");
	if (mb == NULL && mf == NULL && p->auth.user == NULL)
		return conf_errorf(ctx, m, path, -EINVAL, "no mailbox: add "
		    "auth.user, or mailboxes: / mailboxes_file for a batch");
	conf_path(kp, sizeof kp, path, "mailboxes_file");
	if (mf != NULL && (r = conf_get_abs_path(ctx, mf, kp,
	    &p->mailboxes_file)) < 0)
		return r;
	conf_path(kp, sizeof kp, path, "mailboxes");
	if (mb != NULL && (r = conf_parse_mailboxes(ctx, mb, kp, p)) < 0)
		return r;
	if (md == NULL)
		return 0;
	conf_path(kp, sizeof kp, path, "multidrop");
	if (p->auth.user == NULL)
		return conf_errorf(ctx, md, kp, -EINVAL, "multidrop routes one "
		    "catch-all mailbox; give auth.user, not a batch");
	conf_path(kp, sizeof kp, path, "archive_user");
	if (conf_map_get(m, "archive_user") != NULL)
		return conf_errorf(ctx, conf_map_get(m, "archive_user"), kp,
		    -EINVAL, "a multidrop profile has no archive_user: "
		    "routing decides; remove archive_user:");
	conf_path(kp, sizeof kp, path, "multidrop");
	return conf_parse_multidrop(ctx, md, kp, p);
}

/* ---- mailboxes_file, read at every run -------------------------------- */

static int
conf_mb_add(struct conf_mailbox **v, size_t *n, size_t *cap,
    const struct conf_mailbox *mb)
{
	struct conf_mailbox *nv;

	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 16;

		if ((nv = reallocarray(*v, c, sizeof *nv)) == NULL)
			return -ENOMEM;
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = *mb;
	return 0;
}

static int
conf_mb_copy(const struct conf_mailbox *src, struct conf_mailbox *dst)
{
	memset(dst, 0, sizeof *dst);
	dst->user = strdup(src->user);
	dst->archive_user = strdup(src->archive_user != NULL ?
	    src->archive_user : src->user);
	dst->password_file = xstrdup_or_null(src->password_file);
	dst->source_file = xstrdup_or_null(src->source_file);
	dst->source_line = src->source_line;
	if (dst->user == NULL || dst->archive_user == NULL ||
	    (src->password_file != NULL && dst->password_file == NULL))
		return -ENOMEM;
	return 0;
}

static int
conf_warn(char ***w, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
conf_warn(char ***w, size_t *n, const char *fmt, ...)
{
	char **nw, *s, buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if ((s = strdup(buf)) == NULL)
		return -ENOMEM;
	if ((nw = reallocarray(*w, *n + 1, sizeof *nw)) == NULL) {
		free(s);
		return -ENOMEM;
	}
	nw[(*n)++] = s;
	*w = nw;
	return 0;
}

static char *
conf_trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static bool
conf_mb_field_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/* "user[,archive_user[,password_file]]": 0, 1 (malformed: why), -ENOMEM. */
static int
conf_mb_line(char *line, struct conf_mailbox *mb, const char **why)
{
	char *f[3] = { NULL, NULL, NULL }, *next = line, *tok;
	size_t n = 0;

	/* strsep, not strtok: "erin,,/pw" has an empty second field. */
	while ((tok = strsep(&next, ",")) != NULL) {
		if (n == 3) {
			*why = "more than three fields";
			return 1;
		}
		f[n++] = conf_trim(tok);
	}
	if (n == 0 || !conf_mb_field_ok(f[0], CONF_USER_MAX)) {
		*why = "the user field is empty, too long or holds control "
		    "characters";
		return 1;
	}
	if (f[1] != NULL && *f[1] != '\0' && !conf_mb_field_ok(f[1], 128)) {
		*why = "the archive_user field is too long or holds control "
		    "characters";
		return 1;
	}
	if (f[2] != NULL && *f[2] != '\0' && f[2][0] != '/') {
		*why = "the password_file field must be an absolute path";
		return 1;
	}
	memset(mb, 0, sizeof *mb);
	mb->user = f[0];
	mb->archive_user = f[1] != NULL && *f[1] != '\0' ? f[1] : NULL;
	mb->password_file = f[2] != NULL && *f[2] != '\0' ? f[2] : NULL;
	return 0;
}

static int conf_warn(char ***w, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Mailboxes ordered by user, then by position: duplicates end up adjacent. */
static int
conf_mb_cmp(const void *a, const void *b)
{
	const struct conf_mailbox *x = *(const struct conf_mailbox *const *)a;
	const struct conf_mailbox *y = *(const struct conf_mailbox *const *)b;
	int c = strcmp(x->user, y->user);

	return c != 0 ? c : x < y ? -1 : x > y;
}

/*
 * For each entry, the index of the earlier entry with the same user, or -1:
 * one sort, n log n, however many repeat.  NULL when out of memory.
 */
static ssize_t *
conf_mb_dups(const struct conf_mailbox *v, size_t n)
{
	const struct conf_mailbox **ix;
	ssize_t *first;
	size_t i, g = 0;

	first = calloc(n ? n : 1, sizeof *first);
	ix = calloc(n ? n : 1, sizeof *ix);
	if (first == NULL || ix == NULL) {
		free(first);
		free(ix);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		ix[i] = &v[i];
		first[i] = -1;
	}
	qsort(ix, n, sizeof *ix, conf_mb_cmp);
	/* Equal users sort by position, so a group's head is the first. */
	for (i = 1; i < n; i++) {
		if (strcmp(ix[i]->user, ix[g]->user) != 0)
			g = i;
		else
			first[ix[i] - v] = ix[g] - v;
	}
	free(ix);
	return first;
}

/* Drop repeated users (the later entry), each with a warning. */
static int
conf_mb_dedup(struct conf_mailbox *v, size_t *n, char ***warn,
    size_t *n_warn)
{
	ssize_t *first;
	size_t i, k = 0;
	int r = 0;

	if ((first = conf_mb_dups(v, *n)) == NULL)
		return -ENOMEM;
	for (i = 0; i < *n; i++) {
		if (first[i] < 0 || r < 0) {
			v[k++] = v[i];
			continue;
		}
		r = conf_warn(warn, n_warn, "%s:%u: mailbox %s is listed "
		    "twice; the line is skipped (first at %s:%u)",
		    v[i].source_file, v[i].source_line, v[i].user,
		    v[first[i]].source_file, v[first[i]].source_line);
		free(v[i].user);
		free(v[i].archive_user);
		free(v[i].password_file);
		free(v[i].source_file);
	}
	*n = k;
	free(first);
	return r;
}

static int
conf_mb_file(const struct conf_profile *p, struct conf_mailbox **v,
    size_t *n, size_t *cap, char ***warn, size_t *n_warn,
    struct conf_error *err)
{
	char *data, *line, *next;
	size_t len;
	mode_t mode;
	unsigned lineno = 0;
	int r;

	if ((r = conf_read_file_max(p->mailboxes_file, CONF_MAILBOXES_FILE_MAX,
	    &data, &len, &mode, err)) < 0)
		return r;
	/* Whoever can write the list picks which mailboxes the master user
	 * opens and whose archive they land in. */
	if (mode & 022) {
		conf_data_free(data, len);
		snprintf(err->text, sizeof err->text, "%s: writable by group "
		    "or others (mode %04o), so they could choose which "
		    "mailboxes profile %s archives; chmod 644 %s",
		    p->mailboxes_file, (unsigned)(mode & 07777), p->name,
		    p->mailboxes_file);
		return -EPERM;
	}
	r = 0;
	next = data;
	/* strsep, not strtok: blank lines still count for line numbers. */
	while ((line = strsep(&next, "\n")) != NULL && r >= 0) {
		struct conf_mailbox mb, copy;
		const char *why;
		char *t;

		lineno++;
		t = conf_trim(line);
		if (*t == '\0' || *t == '#')
			continue;
		if ((r = conf_mb_line(t, &mb, &why)) == 1) {
			r = conf_warn(warn, n_warn, "%s:%u: %s; the line is "
			    "skipped, the other mailboxes are archived",
			    p->mailboxes_file, lineno, why);
			continue;
		}
		if (r < 0)
			break;
		if (*n >= CONF_MAX_MAILBOXES) {
			r = conf_warn(warn, n_warn, "%s:%u: more than %u "
			    "mailboxes; the rest is skipped", p->mailboxes_file,
			    lineno, CONF_MAX_MAILBOXES);
			break;
		}
		mb.source_file = p->mailboxes_file;
		mb.source_line = lineno;
		if ((r = conf_mb_copy(&mb, &copy)) < 0 ||
		    (r = conf_mb_add(v, n, cap, &copy)) < 0) {
			free(copy.user);
			free(copy.archive_user);
			free(copy.password_file);
			free(copy.source_file);
		}
	}
	conf_data_free(data, len);
	return r < 0 ? r : 0;
}

int
conf_mailboxes_load(const struct conf_profile *p, struct conf_mailbox **ret,
    size_t *ret_n, char ***warnings, size_t *n_warnings,
    struct conf_error *err)
{
	struct conf_mailbox *v = NULL, copy;
	struct conf_mailbox one = { p->auth.user, p->archive_user, NULL,
	    p->source_file, p->source_line };
	size_t n = 0, cap = 0, i;
	int r = 0;

	*warnings = NULL;
	*n_warnings = 0;
	err->text[0] = '\0';
	if (p->auth.user != NULL && p->n_mailboxes == 0 &&
	    p->mailboxes_file == NULL)
		r = (r = conf_mb_copy(&one, &copy)) < 0 ? r :
		    conf_mb_add(&v, &n, &cap, &copy);
	for (i = 0; i < p->n_mailboxes && r == 0; i++)
		if ((r = conf_mb_copy(&p->mailboxes[i], &copy)) == 0)
			r = conf_mb_add(&v, &n, &cap, &copy);
	if (r == 0 && p->mailboxes_file != NULL)
		r = conf_mb_file(p, &v, &n, &cap, warnings, n_warnings, err);
	if (r == 0)
		r = conf_mb_dedup(v, &n, warnings, n_warnings);
	if (r < 0) {
		conf_mailboxes_free(v, n);
		conf_strings_free(*warnings, *n_warnings);
		*warnings = NULL;
		*n_warnings = 0;
		if (err->text[0] == '\0')
			snprintf(err->text, sizeof err->text, "%s",
			    strerror(-r));
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}
