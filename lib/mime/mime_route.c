/*
 * mime_route.c - multidrop routing: which archive users a message from a
 * catch-all mailbox belongs to, decided from its header alone (envelope
 * fields, then Received "for", then To/Cc/...), with distinct results
 * kept in hashed sets so that 10,000 hostile addresses stay cheap.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime_private.h"

#define MIME_ROUTE_MAX_ADDRESSES	10000
#define MIME_ROUTE_USER_MAX		64

/* Strings in first-seen order, with an open-addressing index. */
struct mime_strset {
	char	**v;
	size_t	  n, cap;
	size_t	 *slot;		/* index + 1 into v; 0: empty */
	size_t	  nslot;	/* a power of two, > 2 * n */
};

struct mime_router {
	const struct mime_route_conf *conf;
	struct mime_strset users, unknown;
	size_t		 naddr, budget;
	size_t		 found;		/* addresses of the current source */
	bool		 full;		/* budget spent: stop looking */
};

static uint64_t
mime_hash(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;	/* FNV-1a */
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
	return h;
}

/* The slot of s: where it is, or the empty one where it would go. */
static size_t *
mime_strset_find(const struct mime_strset *set, const char *s, size_t n)
{
	size_t mask = set->nslot - 1, i, *sl;
	const char *e;

	for (i = mime_hash(s, n) & mask;; i = (i + 1) & mask) {
		sl = &set->slot[i];
		if (*sl == 0)
			return sl;
		e = set->v[*sl - 1];
		if (strncmp(e, s, n) == 0 && e[n] == '\0')
			return sl;
	}
}

static int
mime_strset_grow(struct mime_strset *set)
{
	size_t nslot, i, *old = set->slot, oldn = set->nslot;
	char **nv;

	if (set->n == set->cap) {
		set->cap = set->cap == 0 ? 8 : 2 * set->cap;
		if ((nv = reallocarray(set->v, set->cap, sizeof *nv)) == NULL)
			return -ENOMEM;
		set->v = nv;
	}
	if (2 * (set->n + 1) < set->nslot)
		return 0;
	nslot = set->nslot == 0 ? 16 : 2 * set->nslot;
	if ((set->slot = calloc(nslot, sizeof *set->slot)) == NULL) {
		set->slot = old;
		return -ENOMEM;
	}
	set->nslot = nslot;
	for (i = 0; i < oldn; i++)
		if (old[i] != 0)
			*mime_strset_find(set, set->v[old[i] - 1],
			    strlen(set->v[old[i] - 1])) = old[i];
	free(old);
	return 0;
}

/* 1 if added, 0 if already there, -ENOMEM. */
static int
mime_strset_add(struct mime_strset *set, const char *s, size_t n)
{
	size_t *sl;
	char *c;
	int r;

	if (set->nslot > 0 && *mime_strset_find(set, s, n) != 0)
		return 0;
	if ((r = mime_strset_grow(set)) < 0)
		return r;
	if ((c = strndup(s, n)) == NULL)
		return -ENOMEM;
	sl = mime_strset_find(set, s, n);
	set->v[set->n++] = c;
	*sl = set->n;
	return 1;
}

static void
mime_strset_free(struct mime_strset *set)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		free(set->v[i]);
	free(set->v);
	free(set->slot);
}

/* A glob with '*' over the whole of s, ASCII case-insensitive. */
static bool
mime_glob(const char *pat, const char *s)
{
	const char *star = NULL, *mark = NULL;

	while (*s != '\0') {
		if (*pat == '*') {
			star = pat++;
			mark = s;
		} else if (*pat != '\0' &&
		    strncasecmp(pat, s, 1) == 0) {
			pat++;
			s++;
		} else if (star != NULL) {
			pat = star + 1;
			s = ++mark;
		} else
			return false;
	}
	while (*pat == '*')
		pat++;
	return *pat == '\0';
}

/*
 * A local part that may name an archive (a directory, a command-line
 * argument): [a-z0-9._-], no leading '.' or '-', no "..", no final '.'.
 */
static bool
mime_route_safe(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > MIME_ROUTE_USER_MAX || s[0] == '.' || s[0] == '-' ||
	    s[n - 1] == '.')
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] == '.' && s[i + 1] == '.')
			return false;
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || strchr("._-", s[i]) != NULL))
			return false;
	}
	return true;
}

static bool
mime_route_local_domain(const struct mime_route_conf *conf,
    const struct mime_addr *a)
{
	const char *d;
	size_t i;

	for (i = 0; i < conf->n_local_domains; i++) {
		d = conf->local_domains[i];
		if (d != NULL && strlen(d) == a->domainlen &&
		    strncasecmp(d, a->domain, a->domainlen) == 0)
			return true;
	}
	return false;
}

static int
mime_route_add_user(struct mime_router *r, const char *user, size_t n)
{
	int e;

	return (e = mime_strset_add(&r->users, user, n)) < 0 ? e : 0;
}

static int
mime_route_unknown(struct mime_router *r, const struct mime_addr *orig)
{
	char buf[MIME_ADDR_MAX];
	size_t n;
	int e;

	n = mime_addr_format(orig, buf);
	if ((e = mime_strset_add(&r->unknown, buf, n)) < 0)
		return e;
	if (r->conf->unknown == NULL)
		return 0;
	return mime_route_add_user(r, r->conf->unknown,
	    strlen(r->conf->unknown));
}

/* One address: detail stripped, then rules, local domains, unknown. */
static int
mime_route_addr(const struct mime_addr *orig, void *arg)
{
	struct mime_router *r = arg;
	const struct mime_route_conf *conf = r->conf;
	const struct mime_route_rule *rule;
	struct mime_addr a = *orig;
	char buf[MIME_ADDR_MAX];
	const char *plus;
	size_t i;

	if (r->naddr >= r->budget) {
		r->full = true;
		return 1;
	}
	r->naddr++;
	r->found++;
	if (conf->strip_detail != '\0' && (plus = memchr(a.local,
	    conf->strip_detail, a.locallen)) != NULL && plus > a.local)
		a.locallen = (size_t)(plus - a.local);
	mime_addr_format(&a, buf);
	for (i = 0; i < conf->n_rules; i++) {
		rule = &conf->rules[i];
		if (rule->pattern != NULL && rule->user != NULL &&
		    mime_glob(rule->pattern, buf))
			return mime_route_add_user(r, rule->user,
			    strlen(rule->user));
	}
	if (mime_route_local_domain(conf, &a) &&
	    mime_route_safe(a.local, a.locallen))
		return mime_route_add_user(r, a.local, a.locallen);
	return mime_route_unknown(r, orig);
}

static bool
mime_route_name_is(const struct mime_field *f, const char *name)
{
	return name != NULL && strlen(name) == f->namelen &&
	    strncasecmp(f->name, name, f->namelen) == 0;
}

static bool
mime_route_name_in(const struct mime_field *f, const char *const *names,
    size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (mime_route_name_is(f, names[i]))
			return true;
	return false;
}

/*
 * Route the addresses of every field whose name is one of names[0..n):
 * a list of addresses, or a Received field's "for" address.
 */
static int
mime_route_fields(struct mime_router *r, const char *hdr, size_t len,
    const char *const *names, size_t n, bool received)
{
	struct mime_scan sc;
	struct mime_field f;
	int e;

	r->found = 0;
	if (n == 0)
		return 0;
	mime_scan_init(&sc, hdr, len);
	if (r->conf->max_fields > 0)
		sc.maxfields = r->conf->max_fields;
	while (!r->full && mime_scan_next(&sc, &f)) {
		if (!mime_route_name_in(&f, names, n))
			continue;
		e = received ?
		    mime_received_scan(f.value, f.valuelen, mime_route_addr, r) :
		    mime_addr_scan(f.value, f.valuelen, mime_route_addr, r);
		if (e < 0)
			return e;
	}
	return 0;
}

static int
mime_route_sources(struct mime_router *r, const char *hdr, size_t len)
{
	static const char *const received[] = { "Received" };
	const struct mime_route_conf *conf = r->conf;
	size_t i;
	int e;

	for (i = 0; i < conf->n_headers; i++)
		if ((e = mime_route_fields(r, hdr, len, &conf->headers[i], 1,
		    false)) < 0 || r->found > 0)
			return e;
	if (conf->use_received && ((e = mime_route_fields(r, hdr, len,
	    received, 1, true)) < 0 || r->found > 0))
		return e;
	if ((e = mime_route_fields(r, hdr, len, conf->fallback,
	    conf->n_fallback, false)) < 0 || r->found > 0)
		return e;
	/* No address at all: the message belongs to nobody known. */
	if (conf->unknown != NULL)
		return mime_route_add_user(r, conf->unknown,
		    strlen(conf->unknown));
	return 0;
}

int
mime_route(const struct mime_route_conf *conf, const char *hdr, size_t len,
    struct mime_route_result *ret)
{
	struct mime_router r;
	int e;

	memset(&r, 0, sizeof r);
	r.conf = conf;
	r.budget = conf->max_addresses > 0 ? conf->max_addresses :
	    MIME_ROUTE_MAX_ADDRESSES;
	if ((e = mime_route_sources(&r, hdr, len)) < 0) {
		mime_strset_free(&r.users);
		mime_strset_free(&r.unknown);
		return e;
	}
	free(r.users.slot);
	free(r.unknown.slot);
	ret->users = r.users.v;
	ret->n_users = r.users.n;
	ret->unknown = r.unknown.v;
	ret->n_unknown = r.unknown.n;
	return 0;
}

void
mime_route_result_free(struct mime_route_result *res)
{
	size_t i;

	if (res == NULL)
		return;
	for (i = 0; i < res->n_users; i++)
		free(res->users[i]);
	free(res->users);
	for (i = 0; i < res->n_unknown; i++)
		free(res->unknown[i]);
	free(res->unknown);
	memset(res, 0, sizeof *res);
}
