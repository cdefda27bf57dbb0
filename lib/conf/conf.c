/*
 * conf.c - conf_load: the main config file and every conf.d/NAME.yaml
 * beside it, in name order, into one validated struct conf.  The top level
 * (archive:, daemon:, profiles:) is checked here; profiles are handed to
 * conf_profile.c.  The first error stops the load.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/link_rule.h"
#include "base/util.h"
#include "conf_private.h"

#define CONF_CONCURRENT_DEFAULT	8
#define CONF_CONCURRENT_MAX	1024
#define CONF_PER_HOST_DEFAULT	8
#define CONF_PER_HOST_MAX	256
#define CONF_SOCKET_DEFAULT	"/run/mailstow/control"
#define CONF_SUN_PATH_MAX	107	/* sizeof sun_path - 1 on Linux */

static const char *const conf_top_keys[] = {
	"archive", "daemon", "profiles", NULL
};
static const char *const conf_confd_keys[] = { "profiles", NULL };
static const char *const conf_archive_keys[] = { "path", NULL };
static const char *const conf_daemon_keys[] = {
	"max_concurrent_runs", "max_connections_per_host", "control_socket",
	NULL
};

void
conf_free(struct conf *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n_profiles; i++)
		conf_profile_clear(&c->profiles[i]);
	free(c->profiles);
	free(c->path);
	free(c->archive_path);
	free(c->daemon.control_socket);
	free(c);
}

const struct conf_profile *
conf_find_profile(const struct conf *c, const char *name)
{
	size_t i;

	if (c == NULL || name == NULL)
		return NULL;
	for (i = 0; i < c->n_profiles; i++)
		if (strcmp(c->profiles[i].name, name) == 0)
			return &c->profiles[i];
	return NULL;
}

static int
conf_parse_archive(struct conf_ctx *ctx, const struct conf_node *node,
    struct conf *c)
{
	const struct conf_node *m, *v;
	int r;

	if ((r = conf_expect_map(ctx, node, "archive", "path", &m)) < 0 ||
	    (r = conf_check_keys(ctx, m, "archive", conf_archive_keys)) < 0 ||
	    (r = conf_require(ctx, m, node, "archive", "path", &v)) < 0)
		return r;
	return conf_get_abs_path(ctx, v, "archive.path", &c->archive_path);
}

static int
conf_parse_daemon(struct conf_ctx *ctx, const struct conf_node *node,
    struct conf *c)
{
	const struct conf_node *m, *v;
	int r;

	if (node != NULL &&
	    ((r = conf_expect_map(ctx, node, "daemon", "max_concurrent_runs, "
	    "control_socket", &m)) < 0 ||
	    (r = conf_check_keys(ctx, m, "daemon", conf_daemon_keys)) < 0))
		return r;
	if (node == NULL)
		m = NULL;
	c->daemon.max_concurrent_runs = CONF_CONCURRENT_DEFAULT;
	if ((v = conf_map_get(m, "max_concurrent_runs")) != NULL &&
	    (r = conf_get_u32(ctx, v, "daemon.max_concurrent_runs", 1,
	    CONF_CONCURRENT_MAX, &c->daemon.max_concurrent_runs)) < 0)
		return r;
	/* Servers limit connections per client address (Dovecot's
	 * mail_max_userip_connections and the like): one budget per host. */
	c->daemon.max_connections_per_host = CONF_PER_HOST_DEFAULT;
	if ((v = conf_map_get(m, "max_connections_per_host")) != NULL &&
	    (r = conf_get_u32(ctx, v, "daemon.max_connections_per_host", 1,
	    CONF_PER_HOST_MAX, &c->daemon.max_connections_per_host)) < 0)
		return r;
	if ((v = conf_map_get(m, "control_socket")) == NULL) {
		c->daemon.control_socket = strdup(CONF_SOCKET_DEFAULT);
		return c->daemon.control_socket == NULL ? -ENOMEM : 0;
	}
	if ((r = conf_get_abs_path(ctx, v, "daemon.control_socket",
	    &c->daemon.control_socket)) < 0)
		return r;
	if (strlen(c->daemon.control_socket) > CONF_SUN_PATH_MAX)
		return conf_errorf(ctx, v, "daemon.control_socket", -EINVAL,
		    "longer than %d bytes, the limit of a unix socket path; "
		    "choose a shorter path", CONF_SUN_PATH_MAX);
	return 0;
}

/* A conf.d file may only add profiles: say so rather than "unknown key". */
static int
conf_check_confd(struct conf_ctx *ctx, const struct conf_node *root,
    const char *main)
{
	size_t i;

	for (i = 0; root != NULL && i < root->n; i++) {
		const struct conf_node *k = root->pairs[i].key;

		if (strcmp(k->str, "archive") == 0 ||
		    strcmp(k->str, "daemon") == 0)
			return conf_errorf(ctx, k, k->str, -EINVAL,
			    "a conf.d file may only hold profiles:; move "
			    "%s: to %s", k->str, main);
	}
	return conf_check_keys(ctx, root, "", conf_confd_keys);
}

static int
conf_parse_root(struct conf_ctx *ctx, const struct conf_node *root,
    bool confd, const char *main, struct conf *c)
{
	struct conf_node empty = { .type = CONF_NODE_MAP, .line = 1, .col = 1 };
	const struct conf_node *v, *at = root != NULL ? root : &empty;
	int r;

	if (conf_node_is_null(root))
		root = NULL;
	else if (root->type != CONF_NODE_MAP)
		return conf_errorf(ctx, root, "", -EINVAL,
		    "expected a mapping with %s, found %s; see the example "
		    "mailstow.yaml", confd ? "profiles:" :
		    "archive:, daemon: and profiles:", conf_node_kind(root));
	if (confd)
		r = conf_check_confd(ctx, root, main);
	else if ((r = conf_check_keys(ctx, root, "", conf_top_keys)) == 0 &&
	    (r = conf_require(ctx, root, at, "", "archive", &v)) == 0 &&
	    (r = conf_parse_archive(ctx, v, c)) == 0)
		r = conf_parse_daemon(ctx, conf_map_get(root, "daemon"), c);
	if (r < 0)
		return r;
	if ((v = conf_map_get(root, "profiles")) != NULL)
		return conf_parse_profiles(ctx, v, c);
	return 0;
}

static int
conf_load_file(struct conf *c, const char *file, bool confd,
    struct conf_error *err)
{
	struct conf_ctx ctx = { .file = file, .err = err };
	struct conf_node *root = NULL;
	char *data = NULL;
	size_t len = 0;
	int r;

	if ((r = conf_read_file(file, &data, &len, &ctx.mode, err)) < 0)
		return r;
	r = conf_yaml_parse(file, data, len, &root, err);
	conf_data_free(data, len + 1);
	if (r < 0)
		return r;
	r = conf_parse_root(&ctx, root, confd, c->path, c);
	conf_node_free(root);
	if (r == -ENOMEM)
		snprintf(err->text, sizeof err->text,
		    "%s: out of memory while loading it", file);
	return r;
}

static int
conf_cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool
conf_is_yaml_name(const char *n)
{
	size_t len = strlen(n);

	/* Hidden files are editor droppings, not config. */
	return n[0] != '.' && len > 5 && strcmp(n + len - 5, ".yaml") == 0;
}

/* conf.d keeps the symlink rule of the files in it (base/link_rule.h):
 * a link owned by neither root nor us would let its owner pick the
 * profiles. */
static int
conf_confd_link_ok(const char *dir, struct conf_error *err)
{
	struct link_rule_bad bad;
	char real[PATH_MAX];

	/* Other errors are opendir()'s to report. */
	if (link_rule_walk(dir, real, sizeof real, &bad) != -EPERM ||
	    bad.link[0] == '\0')
		return 0;
	link_rule_explain(&bad, dir, "directory", err->text, sizeof err->text);
	return -EPERM;
}

/* The sorted *.yaml names in `dir`; 0 names when it does not exist. */
static int
conf_confd_list(const char *dir, char ***ret, size_t *ret_n,
    struct conf_error *err)
{
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;
	DIR *d;
	int r = 0;

	if ((r = conf_confd_link_ok(dir, err)) < 0)
		return r;
	if ((d = opendir(dir)) == NULL) {
		if (errno == ENOENT) {
			*ret = NULL;
			*ret_n = 0;
			return 0;
		}
		r = -errno;
		snprintf(err->text, sizeof err->text, "%.900s: cannot open the "
		    "directory: %s; fix its permissions or remove it", dir,
		    strerror(-r));
		return r;
	}
	if ((names = calloc(CONF_MAX_CONFD, sizeof *names)) == NULL)
		r = -ENOMEM;
	while (r == 0 && (de = readdir(d)) != NULL) {
		if (!conf_is_yaml_name(de->d_name))
			continue;
		if (n == CONF_MAX_CONFD) {
			snprintf(err->text, sizeof err->text, "%.900s: more than "
			    "%u files; merge some of them", dir, CONF_MAX_CONFD);
			r = -EINVAL;
		} else if ((names[n++] = strdup(de->d_name)) == NULL)
			r = -ENOMEM;
	}
	closedir(d);
	if (r < 0) {
		conf_str_list_free(names, n);
		return r;
	}
	qsort(names, n, sizeof *names, conf_cmp_names);
	*ret = names;
	*ret_n = n;
	return 0;
}

static int
conf_load_confd(struct conf *c, struct conf_error *err)
{
	const char *slash = strrchr(c->path, '/');
	char dir[4096], file[4096 + 256], **names = NULL;
	size_t n = 0, i;
	int len, r;

	if (slash == NULL)
		len = snprintf(dir, sizeof dir, "conf.d");
	else
		len = snprintf(dir, sizeof dir, "%.*s/conf.d",
		    (int)(slash - c->path), c->path);
	if (len < 0 || (size_t)len >= sizeof dir) {
		snprintf(err->text, sizeof err->text, "%s: path too long; "
		    "use a shorter path", c->path);
		return -ENAMETOOLONG;
	}
	if ((r = conf_confd_list(dir, &names, &n, err)) < 0)
		return r;
	for (i = 0; i < n && r == 0; i++) {
		snprintf(file, sizeof file, "%s/%s", dir, names[i]);
		r = conf_load_file(c, file, true, err);
	}
	conf_str_list_free(names, n);
	return r;
}

int
conf_load(const char *path, struct conf **ret, struct conf_error *err)
{
	struct conf *c;
	int r;

	err->text[0] = '\0';
	if (path == NULL || path[0] == '\0') {
		snprintf(err->text, sizeof err->text, "no config file given; "
		    "pass the path of mailstow.yaml");
		return -EINVAL;
	}
	if ((c = calloc(1, sizeof *c)) == NULL ||
	    (c->path = strdup(path)) == NULL) {
		free(c);
		snprintf(err->text, sizeof err->text, "%s: out of memory", path);
		return -ENOMEM;
	}
	if ((r = conf_load_file(c, path, false, err)) == 0)
		r = conf_load_confd(c, err);
	if (r < 0) {
		conf_free(c);
		return r;
	}
	*ret = c;
	return 0;
}
