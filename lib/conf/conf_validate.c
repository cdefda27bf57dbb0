/*
 * conf_validate.c - the typed getters of the config loader: each turns one
 * tree node into a C value or writes an error of the form
 * "FILE:LINE:COL: KEY.PATH: what is wrong; what to do".  Also the unknown
 * key check with its "did you mean" suggestion.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "conf_private.h"

#define CONF_SUGGEST_MAX	64	/* longest key we look for a match of */

int
conf_errorf(struct conf_ctx *ctx, const struct conf_node *at,
    const char *path, int code, const char *fmt, ...)
{
	char *buf = ctx->err->text;
	size_t len = sizeof ctx->err->text;
	va_list ap;
	int n;

	if (path == NULL || path[0] == '\0')
		path = "(top level)";
	if (at != NULL)
		n = snprintf(buf, len, "%s:%u:%u: %s: ", ctx->file, at->line,
		    at->col, path);
	else
		n = snprintf(buf, len, "%s: %s: ", ctx->file, path);
	if (n < 0 || (size_t)n >= len)
		return code;
	va_start(ap, fmt);
	vsnprintf(buf + n, len - (size_t)n, fmt, ap);
	va_end(ap);
	return code;
}

void
conf_path(char *buf, size_t len, const char *parent, const char *key)
{
	if (parent == NULL || parent[0] == '\0')
		snprintf(buf, len, "%s", key);
	else
		snprintf(buf, len, "%s.%s", parent, key);
}

void
conf_path_index(char *buf, size_t len, const char *parent, size_t i)
{
	snprintf(buf, len, "%s[%zu]", parent != NULL ? parent : "", i);
}

/* A scalar for display in an error: escaped and cut short. */
void
conf_show(const struct conf_node *n, char *buf, size_t len)
{
	size_t show;

	if (len < 8) {
		if (len > 0)
			buf[0] = '\0';
		return;
	}
	if (n == NULL || n->type != CONF_NODE_SCALAR) {
		snprintf(buf, len, "%s", conf_node_kind(n));
		return;
	}
	show = n->len < 40 ? n->len : 40;
	str_escape(buf, len - 3, n->str, show);
	if (show < n->len)
		strcat(buf, "...");
}

bool
conf_node_is_null(const struct conf_node *n)
{
	if (n == NULL)
		return true;
	if (n->type != CONF_NODE_SCALAR || !n->plain)
		return false;
	return n->len == 0 || strcmp(n->str, "~") == 0 ||
	    strcmp(n->str, "null") == 0 || strcmp(n->str, "Null") == 0 ||
	    strcmp(n->str, "NULL") == 0;
}

const char *
conf_node_kind(const struct conf_node *n)
{
	if (conf_node_is_null(n))
		return "an empty value";
	if (n->type == CONF_NODE_MAP)
		return "a mapping";
	if (n->type == CONF_NODE_SEQ)
		return "a list";
	return "a single value";
}

static char
conf_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Edit distance with adjacent transpositions (optimal string alignment),
 * both strings at most CONF_SUGGEST_MAX bytes. */
static unsigned
conf_distance(const char *a, size_t la, const char *b, size_t lb)
{
	unsigned char d[CONF_SUGGEST_MAX + 1][CONF_SUGGEST_MAX + 1];
	size_t i, j;

	for (i = 0; i <= la; i++)
		d[i][0] = (unsigned char)i;
	for (j = 0; j <= lb; j++)
		d[0][j] = (unsigned char)j;
	for (i = 1; i <= la; i++) {
		for (j = 1; j <= lb; j++) {
			unsigned cost = conf_lower(a[i - 1]) !=
			    conf_lower(b[j - 1]);
			unsigned v = d[i - 1][j - 1] + cost;

			if (d[i - 1][j] + 1u < v)
				v = d[i - 1][j] + 1u;
			if (d[i][j - 1] + 1u < v)
				v = d[i][j - 1] + 1u;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1u < v)
				v = d[i - 2][j - 2] + 1u;
			d[i][j] = (unsigned char)v;
		}
	}
	return d[la][lb];
}

const char *
conf_suggest(const char *key, const char *const known[])
{
	const char *best = NULL;
	unsigned best_d = ~0u;
	size_t lk = strlen(key), i;

	if (lk == 0 || lk > CONF_SUGGEST_MAX)
		return NULL;
	for (i = 0; known[i] != NULL; i++) {
		size_t ln = strlen(known[i]);
		unsigned d, limit = ln / 3 > 1 ? (unsigned)(ln / 3) : 1;

		if (ln > CONF_SUGGEST_MAX)
			continue;
		d = conf_distance(key, lk, known[i], ln);
		if (d <= limit && d < best_d) {
			best = known[i];
			best_d = d;
		}
	}
	return best;
}

int
conf_expect_map(struct conf_ctx *ctx, const struct conf_node *n,
    const char *path, const char *hint, const struct conf_node **ret)
{
	if (n != NULL && n->type == CONF_NODE_MAP) {
		*ret = n;
		return 0;
	}
	/* "daemon:" with every key commented out is an empty mapping. */
	if (conf_node_is_null(n)) {
		*ret = NULL;
		return 0;
	}
	return conf_errorf(ctx, n, path, -EINVAL,
	    "expected a mapping of keys (%s), found %s; write the keys "
	    "indented below it, one 'key: value' per line", hint,
	    conf_node_kind(n));
}

static bool
conf_key_is(const struct conf_node *k, const char *name)
{
	/* A key with a NUL in it must not pass for its prefix. */
	return strlen(k->str) == k->len && strcmp(k->str, name) == 0;
}

static int
conf_unknown_key(struct conf_ctx *ctx, const struct conf_node *k,
    const char *path, const char *const known[])
{
	char show[72], kpath[CONF_MAX_PATH], list[256] = "";
	const char *guess = NULL;
	size_t i;

	conf_show(k, show, sizeof show);
	conf_path(kpath, sizeof kpath, path, show);
	if (strlen(k->str) == k->len)
		guess = conf_suggest(k->str, known);
	if (guess != NULL)
		return conf_errorf(ctx, k, kpath, -EINVAL,
		    "unknown key '%s'; did you mean '%s'?", show, guess);
	for (i = 0; known[i] != NULL; i++) {
		if (i > 0)
			strncat(list, ", ", sizeof list - strlen(list) - 1);
		strncat(list, known[i], sizeof list - strlen(list) - 1);
	}
	return conf_errorf(ctx, k, kpath, -EINVAL,
	    "unknown key '%s'; the keys allowed here are: %s", show, list);
}

int
conf_check_keys(struct conf_ctx *ctx, const struct conf_node *map,
    const char *path, const char *const known[])
{
	size_t i, j, k;

	for (i = 0; map != NULL && i < map->n; i++) {
		const struct conf_node *key = map->pairs[i].key;

		for (k = 0; known[k] != NULL; k++)
			if (conf_key_is(key, known[k]))
				break;
		if (known[k] == NULL)
			return conf_unknown_key(ctx, key, path, known);
		/* Only known keys got this far, so this loop is short. */
		for (j = 0; j < i; j++) {
			char kpath[CONF_MAX_PATH];

			if (!conf_key_is(map->pairs[j].key, known[k]))
				continue;
			conf_path(kpath, sizeof kpath, path, known[k]);
			return conf_errorf(ctx, key, kpath, -EINVAL,
			    "given twice (first on line %u); keep one",
			    map->pairs[j].key->line);
		}
	}
	return 0;
}

const struct conf_node *
conf_map_get(const struct conf_node *map, const char *key)
{
	size_t i;

	for (i = 0; map != NULL && i < map->n; i++)
		if (conf_key_is(map->pairs[i].key, key))
			return map->pairs[i].value;
	return NULL;
}

int
conf_require(struct conf_ctx *ctx, const struct conf_node *map,
    const struct conf_node *at, const char *path, const char *key,
    const struct conf_node **ret)
{
	const struct conf_node *v = conf_map_get(map, key);
	char kpath[CONF_MAX_PATH];

	if (v != NULL) {
		*ret = v;
		return 0;
	}
	conf_path(kpath, sizeof kpath, path, key);
	return conf_errorf(ctx, at, kpath, -EINVAL,
	    "required key '%s' is missing from the mapping that starts "
	    "here; add '%s: ...'", key, key);
}

int
conf_get_str(struct conf_ctx *ctx, const struct conf_node *n,
    const char *path, char **ret)
{
	size_t i;
	char *s;

	if (n->type != CONF_NODE_SCALAR)
		return conf_errorf(ctx, n, path, -EINVAL,
		    "expected a single value, found %s; write 'key: value'",
		    conf_node_kind(n));
	if (conf_node_is_null(n) || n->len == 0)
		return conf_errorf(ctx, n, path, -EINVAL,
		    "the value is empty; give a value or remove the key");
	/* Control characters have no place in names, hosts or paths, and a
	 * CR or LF in a user name or password would inject protocol lines.
	 * The value itself is not shown: it may be a password. */
	for (i = 0; i < n->len; i++) {
		unsigned char c = (unsigned char)n->str[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return conf_errorf(ctx, n, path, -EINVAL,
			    "the value contains a control character (0x%02x); "
			    "remove it", c);
	}
	if ((s = strdup(n->str)) == NULL)
		return -ENOMEM;
	*ret = s;
	return 0;
}

int
conf_get_abs_path(struct conf_ctx *ctx, const struct conf_node *n,
    const char *path, char **ret)
{
	char *s, show[72];
	int r;

	if ((r = conf_get_str(ctx, n, path, &s)) < 0)
		return r;
	if (s[0] != '/') {
		free(s);
		conf_show(n, show, sizeof show);
		return conf_errorf(ctx, n, path, -EINVAL,
		    "'%s' is not an absolute path; write the full path, "
		    "starting with /", show);
	}
	*ret = s;
	return 0;
}

int
conf_get_bool(struct conf_ctx *ctx, const struct conf_node *n,
    const char *path, bool *ret)
{
	static const char *const yes[] = { "true", "True", "TRUE", NULL };
	static const char *const no[] = { "false", "False", "FALSE", NULL };
	char show[72];
	size_t i;

	/* Only YAML 1.2 booleans, unquoted: "yes", "on" or "false" in quotes
	 * are refused rather than guessed at. */
	for (i = 0; n->type == CONF_NODE_SCALAR && n->plain && yes[i]; i++) {
		if (strcmp(n->str, yes[i]) == 0 || strcmp(n->str, no[i]) == 0) {
			*ret = strcmp(n->str, yes[i]) == 0;
			return 0;
		}
	}
	conf_show(n, show, sizeof show);
	return conf_errorf(ctx, n, path, -EINVAL,
	    "expected true or false, found %s%s%s; write true or false "
	    "without quotes", n->type == CONF_NODE_SCALAR ? "'" : "", show,
	    n->type == CONF_NODE_SCALAR ? "'" : "");
}

int
conf_get_u32(struct conf_ctx *ctx, const struct conf_node *n,
    const char *path, uint32_t min, uint32_t max, uint32_t *ret)
{
	char show[72];
	uint32_t v;
	int r;

	if (n->type != CONF_NODE_SCALAR)
		return conf_errorf(ctx, n, path, -EINVAL,
		    "expected a whole number from %u to %u, found %s; write "
		    "'key: NUMBER'", min, max, conf_node_kind(n));
	conf_show(n, show, sizeof show);
	if (!n->plain)
		return conf_errorf(ctx, n, path, -EINVAL,
		    "expected a number, found the quoted text '%s'; write the "
		    "number without quotes", show);
	r = parse_u32(n->str, n->len, &v);
	if (r == -EINVAL)
		return conf_errorf(ctx, n, path, -EINVAL,
		    "'%s' is not a whole number; write a number from %u to %u",
		    show, min, max);
	if (r < 0 || v < min || v > max)
		return conf_errorf(ctx, n, path, -EINVAL,
		    "%s is out of range; give a number from %u to %u", show,
		    min, max);
	*ret = v;
	return 0;
}

static void
conf_fmt_duration(uint64_t ms, char *buf, size_t len)
{
	if (ms % 3600000 == 0)
		snprintf(buf, len, "%lluh", (unsigned long long)(ms / 3600000));
	else if (ms % 60000 == 0)
		snprintf(buf, len, "%llum", (unsigned long long)(ms / 60000));
	else
		snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
}

int
conf_get_duration_ms(struct conf_ctx *ctx, const struct conf_node *n,
    const char *path, uint64_t min, uint64_t max, uint32_t *ret)
{
	char show[72], lo[24], hi[24];
	uint64_t v;

	conf_show(n, show, sizeof show);
	if (n->type != CONF_NODE_SCALAR || strlen(n->str) != n->len ||
	    parse_duration_ms(n->str, &v) < 0)
		return conf_errorf(ctx, n, path, -EINVAL,
		    "'%s' is not a duration; write a number with a unit "
		    "s, m, h or d, e.g. 60s or 5m", show);
	if (v < min || v > max || v > UINT32_MAX) {
		conf_fmt_duration(min, lo, sizeof lo);
		conf_fmt_duration(max, hi, sizeof hi);
		return conf_errorf(ctx, n, path, -EINVAL,
		    "%s is out of range; give a duration from %s to %s",
		    show, lo, hi);
	}
	*ret = (uint32_t)v;
	return 0;
}

int
conf_get_size(struct conf_ctx *ctx, const struct conf_node *n,
    const char *path, uint64_t *ret)
{
	char show[72];
	uint64_t v;

	if (n->type == CONF_NODE_SCALAR && strlen(n->str) == n->len &&
	    parse_size(n->str, &v) == 0 && v > 0) {
		*ret = v;
		return 0;
	}
	conf_show(n, show, sizeof show);
	return conf_errorf(ctx, n, path, -EINVAL,
	    "'%s' is not a size; write a number of bytes, optionally with "
	    "K, M or G, e.g. 256M", show);
}

void
conf_str_list_free(char **list, size_t n)
{
	size_t i;

	for (i = 0; list != NULL && i < n; i++)
		free(list[i]);
	free(list);
}

int
conf_get_str_list(struct conf_ctx *ctx, const struct conf_node *n,
    const char *path, char ***ret, size_t *ret_n)
{
	char ipath[CONF_MAX_PATH], **list;
	size_t i;
	int r;

	if (n->type != CONF_NODE_SEQ)
		return conf_errorf(ctx, n, path, -EINVAL,
		    "expected a list, found %s; write [A, B] or one '- A' "
		    "line per entry", conf_node_kind(n));
	if (n->n > CONF_MAX_PATTERNS)
		return conf_errorf(ctx, n, path, -EINVAL,
		    "more than %u entries; use wildcards to shorten the list",
		    CONF_MAX_PATTERNS);
	if ((list = calloc(n->n + 1, sizeof *list)) == NULL)
		return -ENOMEM;
	for (i = 0; i < n->n; i++) {
		conf_path_index(ipath, sizeof ipath, path, i);
		if ((r = conf_get_str(ctx, n->items[i], ipath, &list[i])) < 0) {
			conf_str_list_free(list, i);
			return r;
		}
	}
	*ret = list;
	*ret_n = n->n;
	return 0;
}
