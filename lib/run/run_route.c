/*
 * run_route.c - multidrop for a run: the profile's routes as mime_route()
 * wants them, each message's archive users, what every user received, and
 * the recipients nobody knew, all of it reported in the protocol once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run/run_private.h"

#define RUN_MAX_TALLIES		10000
#define RUN_MAX_UNKNOWN		1000
#define RUN_MAX_ADDRESSES	10000
#define RUN_MAX_FIELDS		1000

static int
run_route_conf(const struct conf_multidrop *md, struct mime_route_conf *rc,
    struct mime_route_rule **ret_rules)
{
	struct mime_route_rule *rules = NULL;
	size_t i;

	if (md->n_recipients > 0 &&
	    (rules = calloc(md->n_recipients, sizeof *rules)) == NULL)
		return -ENOMEM;
	for (i = 0; i < md->n_recipients; i++) {
		rules[i].pattern = md->recipients[i].pattern;
		rules[i].user = md->recipients[i].user;
	}
	*rc = (struct mime_route_conf){
		.headers = (const char *const *)md->headers,
		.n_headers = md->n_headers,
		.fallback = (const char *const *)md->fall_back_to,
		.n_fallback = md->n_fall_back_to,
		.local_domains = (const char *const *)md->local_domains,
		.n_local_domains = md->n_local_domains,
		.rules = rules, .n_rules = md->n_recipients,
		.strip_detail = md->strip_detail, .unknown = md->unknown,
		.use_received = md->use_received,
		.max_addresses = RUN_MAX_ADDRESSES,
		.max_fields = RUN_MAX_FIELDS,
	};
	*ret_rules = rules;
	return 0;
}

static void
run_unknown_note(struct run *r, const char *addr)
{
	char **nv;
	size_t i;

	for (i = 0; i < r->n_unknown; i++)
		if (strcmp(r->unknown[i], addr) == 0)
			return;
	if (r->n_unknown >= RUN_MAX_UNKNOWN) {
		r->unknown_truncated = true;
		return;
	}
	if ((nv = reallocarray(r->unknown, r->n_unknown + 1, sizeof *nv)) == NULL)
		return;
	r->unknown = nv;
	if ((r->unknown[r->n_unknown] = strdup(addr)) != NULL)
		r->n_unknown++;
}

int
run_route(struct run_session *s, const char *hdr, size_t len,
    char ***ret_users, size_t *ret_n)
{
	struct mime_route_result res = { 0 };
	struct mime_route_rule *rules;
	struct mime_route_conf rc;
	size_t i;
	int r;

	if ((r = run_route_conf(&s->r->p.profile->multidrop, &rc, &rules)) < 0)
		return r;
	r = mime_route(&rc, hdr, len, &res);
	free(rules);
	if (r < 0)
		return r;
	for (i = 0; i < res.n_unknown; i++)
		run_unknown_note(s->r, res.unknown[i]);
	/* The users move to the caller; the rest is freed. */
	*ret_users = res.users;
	*ret_n = res.n_users;
	res.users = NULL;
	res.n_users = 0;
	mime_route_result_free(&res);
	return 0;
}

void
run_tally(struct run *r, const char *user, bool duplicate)
{
	struct run_tally *nv;
	size_t i;

	for (i = 0; i < r->n_tallies; i++)
		if (strcmp(r->tallies[i].user, user) == 0)
			break;
	if (i == r->n_tallies) {
		if (r->n_tallies >= RUN_MAX_TALLIES || (nv = reallocarray(
		    r->tallies, r->n_tallies + 1, sizeof *nv)) == NULL)
			return;
		r->tallies = nv;
		memset(&nv[i], 0, sizeof nv[i]);
		if ((nv[i].user = strdup(user)) == NULL)
			return;
		r->n_tallies++;
	}
	if (duplicate)
		r->tallies[i].skipped++;
	else
		r->tallies[i].archived++;
}

/* One line per archive user and one with the strangers, at the end. */
void
run_route_report(struct run *r)
{
	const struct conf_multidrop *md = &r->p.profile->multidrop;
	char list[1024];
	size_t i, off = 0;

	for (i = 0; i < r->n_tallies; i++)
		run_event(r, STORE_INFO, NULL, NULL, 0, "archive user %s: "
		    "%llu archived, %llu already archived", r->tallies[i].user,
		    (unsigned long long)r->tallies[i].archived,
		    (unsigned long long)r->tallies[i].skipped);
	if (r->n_unknown == 0)
		return;
	list[0] = '\0';
	for (i = 0; i < r->n_unknown && off < sizeof list - 1; i++)
		off += (size_t)snprintf(list + off, sizeof list - off, "%s%s",
		    i ? ", " : "", r->unknown[i]);
	run_event(r, STORE_WARNING, NULL, NULL, 0, "%zu%s unknown "
	    "recipients, %s%s: %s%s", r->n_unknown,
	    r->unknown_truncated ? "+" : "", md->unknown != NULL ?
	    "filed for archive user " : "skipped (unknown: skip)",
	    md->unknown != NULL ? md->unknown : "", list,
	    off >= sizeof list - 1 ? "..." : "");
}

void
run_route_free(struct run *r)
{
	size_t i;

	for (i = 0; i < r->n_tallies; i++)
		free(r->tallies[i].user);
	free(r->tallies);
	for (i = 0; i < r->n_unknown; i++)
		free(r->unknown[i]);
	free(r->unknown);
}
