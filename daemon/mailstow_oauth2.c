/*
 * mailstow_oauth2.c - `mailstow oauth2 login PROFILE` signs a profile in
 * once: the device-code flow (RFC 8628) for a user, printing where to
 * approve and polling until the provider answers; one client_credentials
 * grant for an app.  `mailstow oauth2 status` shows the tokens we hold,
 * never their values.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

#include "base/log.h"
#include "oauth2/oauth2.h"

#include "mailstow.h"

/* One sign-in in progress. */
struct login {
	struct event_base *base;
	struct oauth2_client *client;
	const struct conf_profile *p;
	char	 path[4096];
	struct event *timer;
	char	*device_code;
	uint32_t interval;
	time_t	 deadline;
	int	 rc;
};

static void
login_end(struct login *l, int rc, const char *why)
{
	if (why != NULL)
		fprintf(stderr, "mailstow: %s\n", why);
	l->rc = rc;
	event_base_loopexit(l->base, NULL);
}

static void
login_saved(struct login *l, struct oauth2_tokens *t)
{
	int err;

	t->updated_at = time(NULL);
	if ((err = oauth2_tokens_save(l->path, t)) < 0) {
		fprintf(stderr, "mailstow: could not store the tokens in %s: "
		    "%s; check that directory's owner and mode\n", l->path,
		    strerror(-err));
		login_end(l, EXIT_RUN_FAILED, NULL);
		return;
	}
	printf("signed in: tokens for %s stored in %s\n", l->p->name, l->path);
	fflush(stdout);
	login_end(l, 0, NULL);
}

static void	login_poll(evutil_socket_t, short, void *);

static void
login_arm(struct login *l)
{
	struct timeval tv = { l->interval, 0 };

	evtimer_add(l->timer, &tv);
}

static void
login_polled(void *arg, struct oauth2_result *res)
{
	struct login *l = arg;

	switch (res->status) {
	case OAUTH2_OK:
		login_saved(l, &res->tokens);
		return;
	case OAUTH2_ERR_SLOW_DOWN:
		/* RFC 8628 section 3.5: five seconds more from now on. */
		l->interval += 5;
		/* FALLTHROUGH */
	case OAUTH2_ERR_PENDING:
		if (time(NULL) + l->interval > l->deadline) {
			login_end(l, EXIT_RUN_FAILED, "the code expired before "
			    "it was approved; run `mailstow oauth2 login` "
			    "again");
			return;
		}
		login_arm(l);
		return;
	default:
		login_end(l, EXIT_RUN_FAILED, res->why);
	}
}

static void
login_poll(evutil_socket_t fd, short what, void *arg)
{
	struct login *l = arg;

	if (oauth2_device_poll(l->client, l->p, l->device_code, login_polled,
	    l, NULL) < 0)
		login_end(l, EXIT_RUN_FAILED, "could not poll the token "
		    "endpoint: out of memory");
}

static void
login_started(void *arg, struct oauth2_result *res)
{
	struct login *l = arg;
	struct oauth2_device *d = &res->device;

	if (res->status != OAUTH2_OK) {
		login_end(l, EXIT_RUN_FAILED, res->why);
		return;
	}
	printf("To sign in, open %s and enter the code %s\n",
	    d->verification_uri, d->user_code);
	if (d->verification_uri_complete != NULL)
		printf("(or open %s)\n", d->verification_uri_complete);
	printf("waiting for the approval...\n");
	fflush(stdout);
	l->device_code = d->device_code;
	d->device_code = NULL;
	l->interval = d->interval > 0 ? d->interval : 5;
	l->deadline = time(NULL) + (d->expires_in > 0 ? d->expires_in : 900);
	login_arm(l);
}

static void
login_app(void *arg, struct oauth2_result *res)
{
	struct login *l = arg;

	if (res->status != OAUTH2_OK) {
		login_end(l, EXIT_RUN_FAILED, res->why);
		return;
	}
	/* oauth2_token_get() has saved them already. */
	printf("signed in: tokens for %s stored in %s\n", l->p->name, l->path);
	fflush(stdout);
	login_end(l, 0, NULL);
}

static const struct conf_profile *
oauth2_profile(struct cli *cli, const char *name)
{
	const struct conf_profile *p = conf_find_profile(cli->conf, name);

	if (p == NULL)
		fprintf(stderr, "mailstow: no profile named '%s' in %s\n", name,
		    cli->config);
	else if (!p->auth.oauth2.enabled)
		fprintf(stderr, "mailstow: profile %s does not log in with "
		    "OAuth2; add auth.oauth2 to it\n", name);
	else
		return p;
	return NULL;
}

static int
login_begin(struct login *l, const char *archive)
{
	/* The archive may not exist before its first run. */
	if (mkdir(archive, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (oauth2_token_path(archive, l->p->name, l->path,
	    sizeof l->path) < 0)
		return -ENAMETOOLONG;
	if (l->p->auth.oauth2.flow == CONF_OAUTH2_CLIENT_CREDENTIALS)
		return oauth2_token_get(l->client, l->p, l->path, true,
		    login_app, l, NULL);
	return oauth2_device_start(l->client, l->p, login_started, l, NULL);
}

static int
oauth2_login(struct cli *cli, const char *name)
{
	struct login l = { .rc = EXIT_RUN_FAILED };
	int err;

	if ((l.p = oauth2_profile(cli, name)) == NULL)
		return EXIT_USAGE;
	if ((l.base = event_base_new()) == NULL ||
	    (l.timer = evtimer_new(l.base, login_poll, &l)) == NULL ||
	    oauth2_client_new(l.base, &l.client) < 0) {
		fprintf(stderr, "mailstow: out of memory\n");
		goto out;
	}
	if ((err = login_begin(&l, cli->conf->archive_path)) < 0) {
		fprintf(stderr, "mailstow: could not start the sign-in for %s "
		    "(%s): %s\n", name, cli->conf->archive_path, strerror(-err));
		goto out;
	}
	event_base_dispatch(l.base);
out:
	oauth2_client_free(l.client);
	if (l.timer != NULL)
		event_free(l.timer);
	if (l.base != NULL)
		event_base_free(l.base);
	if (l.device_code != NULL) {
		explicit_bzero(l.device_code, strlen(l.device_code));
		free(l.device_code);
	}
	return l.rc;
}

/* ---- status ---------------------------------------------------------- */

static void
iso_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || gmtime_r(&tt, &tm) == NULL)
		snprintf(buf, len, "-");
	else
		strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A time for JSON: null when there is none. */
static json_t *
status_time(const char *iso)
{
	return strcmp(iso, "-") == 0 ? json_null() : json_string(iso);
}

/* "valid", "expired", "none" or "unreadable" (with why). */
static const char *
status_state(const struct oauth2_tokens *t, int err, char *why, size_t len)
{
	*why = '\0';
	if (err == -ENOENT)
		return "none";
	if (err == -EPERM) {
		snprintf(why, len, "readable by group or others: chmod 600 it");
		return "unreadable";
	}
	if (err < 0) {
		snprintf(why, len, "%s", strerror(-err));
		return "unreadable";
	}
	return t->expires_at > time(NULL) ? "valid" : "expired";
}

static int
status_one(struct cli *cli, const struct conf_profile *p, json_t *list)
{
	struct oauth2_tokens t = { 0 };
	char path[4096], exp[32], upd[32], why[128];
	const char *flow = p->auth.oauth2.flow == CONF_OAUTH2_CLIENT_CREDENTIALS ?
	    "client_credentials" : "refresh_token";
	const char *state;
	int err;

	if (oauth2_token_path(cli->conf->archive_path, p->name, path,
	    sizeof path) < 0)
		return -1;
	err = oauth2_tokens_load(path, &t);
	state = status_state(&t, err, why, sizeof why);
	iso_time(err == 0 ? t.expires_at : 0, exp, sizeof exp);
	iso_time(err == 0 ? t.updated_at : 0, upd, sizeof upd);
	if (list != NULL)
		json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:o, "
		    "s:b, s:o, s:s}", "profile", p->name, "flow", flow, "state",
		    state, "access_expires_at", status_time(exp),
		    "has_refresh_token", err == 0 && t.refresh_token != NULL,
		    "updated_at", status_time(upd), "path", path));
	else
		printf("%-20s %-18s %-10s expires %-20s refresh token %-3s "
		    "updated %s%s%s\n", p->name, flow, state, exp,
		    err == 0 && t.refresh_token != NULL ? "yes" : "no", upd,
		    *why != '\0' ? ": " : "", why);
	oauth2_tokens_clear(&t);
	return strcmp(state, "unreadable") == 0 ? -1 : 0;
}

static int
oauth2_status(struct cli *cli)
{
	json_t *list = cli->json ? json_array() : NULL;
	size_t i, n = 0;
	int rc = 0;

	if (cli->json && list == NULL)
		return EXIT_RUN_FAILED;
	for (i = 0; i < cli->conf->n_profiles; i++) {
		const struct conf_profile *p = &cli->conf->profiles[i];

		if (!p->auth.oauth2.enabled)
			continue;
		n++;
		if (status_one(cli, p, list) < 0)
			rc = EXIT_RUN_FAILED;
	}
	if (list != NULL) {
		json_dumpf(list, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(list);
	} else if (n == 0) {
		printf("no profile logs in with OAuth2\n");
	}
	return rc;
}

int
cmd_oauth2(struct cli *cli, int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[0], "login") == 0)
		return oauth2_login(cli, argv[1]);
	if (argc == 1 && strcmp(argv[0], "status") == 0)
		return oauth2_status(cli);
	fprintf(stderr, "usage: mailstow oauth2 login PROFILE | "
	    "mailstow oauth2 status [--json]\n");
	return EXIT_USAGE;
}
