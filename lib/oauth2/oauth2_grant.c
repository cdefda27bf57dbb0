/*
 * oauth2_grant.c - the four token endpoint requests (refresh_token and
 * client_credentials grants, RFC 8628 device authorization and polling)
 * as form POSTs, the client secret read from its file at request time,
 * and oauth2_token_get: load the token file, answer from it or refresh,
 * save (on the thread of oauth2_save.c) before answering.  Requests for
 * one token file that arrive while its refresh or save is in flight wait
 * for it instead of spending the same refresh token twice (a rotating
 * provider would revoke it).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/link_rule.h"
#include "base/util.h"
#include "oauth2_private.h"

#define OAUTH2_MAX_VALUE	(64 * 1024)	/* one form value */

struct oauth2_pair {
	const char	*key;
	const char	*value;		/* NULL: left out */
};

/* ---- the client secret ------------------------------------------------- */

static int
oauth2_secret_open(struct oauth2_request *req, const char *file)
{
	struct link_rule_bad bad;
	char why[1024];
	int fd;

	/* The symlink rule: a link's owner picks what we would send as our
	 * secret. */
	fd = link_rule_open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK, &bad);
	if (fd == -EPERM && bad.link[0] != '\0') {
		link_rule_explain(&bad, file, "file", why, sizeof why);
		oauth2_result_set(req, OAUTH2_ERR_LOCAL, "auth.oauth2."
		    "client_secret_file %s", why);
	} else if (fd < 0)
		oauth2_result_set(req, OAUTH2_ERR_LOCAL, "cannot open auth."
		    "oauth2.client_secret_file %s: %s; check the path and that "
		    "mailstow may read it", file, strerror(-fd));
	return fd;
}

static int
oauth2_secret_check(struct oauth2_request *req, int fd, const char *file)
{
	struct stat st;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		oauth2_result_set(req, OAUTH2_ERR_LOCAL, "auth.oauth2."
		    "client_secret_file %s is not a regular file; give the "
		    "file that holds the secret", file);
		return -EINVAL;
	}
	if (st.st_mode & 077) {
		oauth2_result_set(req, OAUTH2_ERR_LOCAL, "auth.oauth2."
		    "client_secret_file %s is readable by group or others "
		    "(mode %04o); chmod 600 %s", file,
		    (unsigned)(st.st_mode & 07777), file);
		return -EPERM;
	}
	return 0;
}

/* One trailing "\n" or "\r\n" goes; other line breaks are refused. */
static int
oauth2_secret_take(struct oauth2_request *req, const char *file, char *buf,
    size_t len, char **ret)
{
	if (len > OAUTH2_MAX_SECRET) {
		oauth2_result_set(req, OAUTH2_ERR_LOCAL, "auth.oauth2."
		    "client_secret_file %s is larger than %d bytes; it holds "
		    "the secret alone", file, OAUTH2_MAX_SECRET);
		return -EINVAL;
	}
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	if (len == 0 || memchr(buf, '\n', len) != NULL ||
	    memchr(buf, '\r', len) != NULL || memchr(buf, '\0', len) != NULL) {
		oauth2_result_set(req, OAUTH2_ERR_LOCAL, "auth.oauth2."
		    "client_secret_file %s is empty or holds more than one "
		    "line; write the secret alone on one line", file);
		return -EINVAL;
	}
	if ((*ret = strndup(buf, len)) == NULL) {
		oauth2_result_set(req, OAUTH2_ERR_LOCAL, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

static int
oauth2_secret_read(struct oauth2_request *req, const char *file, char **ret)
{
	char buf[OAUTH2_MAX_SECRET + 2];
	size_t len = 0;
	ssize_t n = 0;
	int fd, r;

	if ((fd = oauth2_secret_open(req, file)) < 0)
		return fd;
	if ((r = oauth2_secret_check(req, fd, file)) == 0) {
		/* One byte past the limit tells "too large" from "full". */
		while (len < OAUTH2_MAX_SECRET + 1) {
			n = read(fd, buf + len, OAUTH2_MAX_SECRET + 1 - len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			len += (size_t)n;
		}
		if (n < 0) {
			r = -errno;
			oauth2_result_set(req, OAUTH2_ERR_LOCAL, "cannot read "
			    "auth.oauth2.client_secret_file %s: %s; check the "
			    "file", file, strerror(-r));
		} else
			r = oauth2_secret_take(req, file, buf, len, ret);
	}
	explicit_bzero(buf, sizeof buf);
	close(fd);
	return r;
}

/* ---- requests ---------------------------------------------------------- */

/* application/x-www-form-urlencoded, every value escaped. */
static int
oauth2_form(struct oauth2_request *req, const struct oauth2_pair *pairs,
    size_t n)
{
	size_t cap = 1, len = 0, i, elen;
	char *buf, *esc;

	for (i = 0; i < n; i++) {
		if (pairs[i].value == NULL)
			continue;
		if (strlen(pairs[i].value) > OAUTH2_MAX_VALUE)
			return -EINVAL;
		cap += strlen(pairs[i].key) + 2 + 3 * strlen(pairs[i].value);
	}
	if ((buf = malloc(cap)) == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		if (pairs[i].value == NULL)
			continue;
		esc = curl_easy_escape(req->easy, pairs[i].value,
		    (int)strlen(pairs[i].value));
		if (esc == NULL) {
			explicit_bzero(buf, cap);
			free(buf);
			return -ENOMEM;
		}
		elen = strlen(esc);
		len += (size_t)snprintf(buf + len, cap - len, "%s%s=%s",
		    len > 0 ? "&" : "", pairs[i].key, esc);
		explicit_bzero(esc, elen);
		curl_free(esc);
	}
	req->body = buf;
	req->body_len = len;
	return 0;
}

static int
oauth2_grant_body(struct oauth2_request *req, const struct conf_oauth2 *o,
    const char *value, const char *secret)
{
	struct oauth2_pair f[6];
	size_t n = 0;

	switch (req->kind) {
	case OAUTH2_K_REFRESH:
		f[n++] = (struct oauth2_pair){ "grant_type", "refresh_token" };
		f[n++] = (struct oauth2_pair){ "refresh_token", value };
		f[n++] = (struct oauth2_pair){ "scope", o->scope };
		break;
	case OAUTH2_K_CLIENT_CREDENTIALS:
		f[n++] = (struct oauth2_pair){ "grant_type",
		    "client_credentials" };
		f[n++] = (struct oauth2_pair){ "scope", o->scope };
		break;
	case OAUTH2_K_DEVICE_START:
		/* RFC 8628 3.1: a confidential client authenticates here
		 * as at the token endpoint. */
		f[n++] = (struct oauth2_pair){ "scope", o->scope };
		break;
	case OAUTH2_K_DEVICE_POLL:
		f[n++] = (struct oauth2_pair){ "grant_type",
		    "urn:ietf:params:oauth:grant-type:device_code" };
		f[n++] = (struct oauth2_pair){ "device_code", value };
		break;
	case OAUTH2_K_GET:
		return -EINVAL;
	}
	f[n++] = (struct oauth2_pair){ "client_id", o->client_id };
	f[n++] = (struct oauth2_pair){ "client_secret", secret };
	return oauth2_form(req, f, n);
}

static int
oauth2_grant_prepare(struct oauth2_request *req, const struct conf_oauth2 *o,
    const char *value)
{
	char *secret = NULL;
	int r;

	if ((req->conf_scope = xstrdup_or_null(o->scope)) == NULL &&
	    o->scope != NULL)
		return -ENOMEM;
	if (value != NULL && (req->secrets[1] = strdup(value)) == NULL)
		return -ENOMEM;
	if (req->kind == OAUTH2_K_REFRESH &&
	    (req->old_refresh = strdup(value)) == NULL)
		return -ENOMEM;
	if ((req->easy = curl_easy_init()) == NULL)
		return -ENOMEM;
	if (o->client_secret_file != NULL &&
	    (r = oauth2_secret_read(req, o->client_secret_file, &secret)) < 0)
		return r == -ENOMEM ? r : 1;	/* 1: answered, `why` set */
	/* Kept until the end so a server echoing it gets it blotted out. */
	req->secrets[0] = secret;
	return oauth2_grant_body(req, o, value, secret);
}

static int
oauth2_grant(struct oauth2_client *c, const struct conf_profile *p,
    enum oauth2_kind kind, const char *value, oauth2_cb cb, void *arg,
    struct oauth2_request **ret)
{
	const struct conf_oauth2 *o = &p->auth.oauth2;
	const char *url = kind == OAUTH2_K_DEVICE_START ?
	    o->device_authorization_endpoint : o->token_endpoint;
	struct oauth2_request *req;
	int r;

	if (!o->enabled || o->client_id == NULL || url == NULL)
		return -EINVAL;
	if ((kind == OAUTH2_K_REFRESH || kind == OAUTH2_K_DEVICE_POLL) &&
	    (value == NULL || value[0] == '\0'))
		return -EINVAL;
	if ((r = oauth2_request_new(c, kind, p, cb, arg, &req)) < 0)
		return r;
	snprintf(req->url, sizeof req->url, "%s", url);
	if ((r = oauth2_grant_prepare(req, o, value)) == 1)
		oauth2_request_finish(req);
	else if (r < 0 || (r = oauth2_request_post(req, url, o->ca_file)) < 0) {
		oauth2_request_cancel(req);
		return r;
	}
	if (ret != NULL)
		*ret = req;
	return 0;
}

int
oauth2_refresh(struct oauth2_client *c, const struct conf_profile *p,
    const char *refresh_token, oauth2_cb cb, void *arg,
    struct oauth2_request **ret)
{
	return oauth2_grant(c, p, OAUTH2_K_REFRESH, refresh_token, cb, arg,
	    ret);
}

int
oauth2_client_credentials(struct oauth2_client *c,
    const struct conf_profile *p, oauth2_cb cb, void *arg,
    struct oauth2_request **ret)
{
	return oauth2_grant(c, p, OAUTH2_K_CLIENT_CREDENTIALS, NULL, cb, arg,
	    ret);
}

int
oauth2_device_start(struct oauth2_client *c, const struct conf_profile *p,
    oauth2_cb cb, void *arg, struct oauth2_request **ret)
{
	return oauth2_grant(c, p, OAUTH2_K_DEVICE_START, NULL, cb, arg, ret);
}

int
oauth2_device_poll(struct oauth2_client *c, const struct conf_profile *p,
    const char *device_code, oauth2_cb cb, void *arg,
    struct oauth2_request **ret)
{
	return oauth2_grant(c, p, OAUTH2_K_DEVICE_POLL, device_code, cb, arg,
	    ret);
}

/* ---- oauth2_token_get -------------------------------------------------- */

/* The requests waiting on `leader` get a copy of its outcome. */
static void
oauth2_get_followers(struct oauth2_request *leader)
{
	struct oauth2_request *r, *next;
	struct oauth2_result *res;

	for (r = oauth2_client_requests(leader->c); r != NULL; r = next) {
		next = r->next;
		if (r->leader != leader)
			continue;
		r->leader = NULL;
		res = &r->result;
		res->status = leader->result.status;
		memcpy(res->why, leader->result.why, sizeof res->why);
		if (res->status == OAUTH2_OK && oauth2_tokens_copy(
		    &leader->result.tokens, &res->tokens) < 0)
			oauth2_result_set(r, OAUTH2_ERR_LOCAL, "out of memory");
		oauth2_request_finish(r);
	}
}

void
oauth2_get_save_done(struct oauth2_request *req, struct oauth2_tokens *t,
    int rc)
{
	if (rc < 0) {
		oauth2_tokens_clear(t);
		oauth2_result_set(req, OAUTH2_ERR_LOCAL, "cannot save the new "
		    "tokens of profile %s to %s: %s; fix the directory, then "
		    "run `mailstow oauth2 login %s` if the next run is refused",
		    req->profile, req->path, strerror(-rc), req->profile);
	} else {
		req->result.tokens = *t;
		memset(t, 0, sizeof *t);
		oauth2_result_set(req, OAUTH2_OK, "%s", "");
	}
	oauth2_get_followers(req);
	oauth2_request_finish(req);
}

/* Saved durably BEFORE anyone is answered: the refresh token may have
 * rotated, and the old one is dead at the provider. */
static void
oauth2_get_save(struct oauth2_request *req, struct oauth2_result *inner)
{
	struct oauth2_tokens t = inner->tokens;

	memset(&inner->tokens, 0, sizeof inner->tokens);
	t.updated_at = (int64_t)time(NULL);
	if (oauth2_save_start(req, &t) == 0)
		return;
	/* No thread to be had: stall the loop rather than lose the token. */
	oauth2_get_save_done(req, &t, oauth2_tokens_save(req->path, &t));
}

/* The grant that `arg` started is over: save, then answer everyone. */
static void
oauth2_get_inner_cb(void *arg, struct oauth2_result *inner)
{
	struct oauth2_request *req = arg;

	req->inner = NULL;
	if (inner->status == OAUTH2_OK) {
		oauth2_get_save(req, inner);
		return;
	}
	req->result.status = inner->status;
	memcpy(req->result.why, inner->why, sizeof req->result.why);
	oauth2_get_followers(req);
	oauth2_request_finish(req);
}

/*
 * A leader cancelled by its caller hands its refresh in flight, or its
 * token file being written, to the first request waiting on it, so
 * theirs still completes.  A write nobody waits for is finished anyway.
 */
void
oauth2_get_leader_gone(struct oauth2_request *leader)
{
	struct oauth2_request *r, *heir = NULL;

	for (r = oauth2_client_requests(leader->c); r != NULL; r = r->next) {
		if (r->leader != leader)
			continue;
		if (heir != NULL) {
			r->leader = heir;
			continue;
		}
		heir = r;
		r->leader = NULL;
		if ((r->inner = leader->inner) != NULL) {
			r->inner->parent = r;
			r->inner->arg = r;
		}
		leader->inner = NULL;
	}
	oauth2_save_detach(leader, heir);
}

static struct oauth2_request *
oauth2_get_find_leader(struct oauth2_request *req)
{
	struct oauth2_request *r;

	for (r = oauth2_client_requests(req->c); r != NULL; r = r->next)
		if (r != req && r->kind == OAUTH2_K_GET &&
		    (r->inner != NULL || r->save != NULL) &&
		    strcmp(r->path, req->path) == 0)
			return r;
	return NULL;
}

/* Refresh (or run the client_credentials grant), or wait for one. */
static int
oauth2_get_grant(struct oauth2_request *req, const struct conf_profile *p,
    const struct oauth2_tokens *t)
{
	bool cc = p->auth.oauth2.flow == CONF_OAUTH2_CLIENT_CREDENTIALS;
	int r;

	/* Until a new file is written, the old refresh token may be dead. */
	if ((req->leader = oauth2_get_find_leader(req)) != NULL ||
	    oauth2_save_adopt(req))
		return 0;
	if (!cc && t->refresh_token == NULL) {
		oauth2_result_set(req, OAUTH2_ERR_LOGIN, "the token file %s "
		    "of profile %s holds no refresh token; run `mailstow "
		    "oauth2 login %s`", req->path, req->profile, req->profile);
		oauth2_request_finish(req);
		return 0;
	}
	if (cc)
		r = oauth2_client_credentials(req->c, p, oauth2_get_inner_cb,
		    req, &req->inner);
	else
		r = oauth2_refresh(req->c, p, t->refresh_token,
		    oauth2_get_inner_cb, req, &req->inner);
	if (r == 0)
		req->inner->parent = req;
	return r;
}

/* The token file could not be used (and no grant can replace it). */
static void
oauth2_get_unusable(struct oauth2_request *req, int r)
{
	const char *f = req->path, *p = req->profile;

	if (r == -ENOENT)
		oauth2_result_set(req, OAUTH2_ERR_LOGIN, "profile %s has no "
		    "OAuth2 tokens yet (no %s); run `mailstow oauth2 login %s`",
		    p, f, p);
	else if (r == -EPERM)
		oauth2_result_set(req, OAUTH2_ERR_LOCAL, "the token file %s is "
		    "readable by group or others, or a symlink; chmod 600 %s",
		    f, f);
	else if (r == -EINVAL)
		oauth2_result_set(req, OAUTH2_ERR_LOGIN, "the token file %s is "
		    "malformed; run `mailstow oauth2 login %s` to write a new "
		    "one", f, p);
	else
		oauth2_result_set(req, OAUTH2_ERR_LOCAL, "cannot read the "
		    "token file %s: %s; check its directory's permissions", f,
		    strerror(-r));
	oauth2_request_finish(req);
}

static int
oauth2_get_decide(struct oauth2_request *req, const struct conf_profile *p,
    bool force)
{
	bool cc = p->auth.oauth2.flow == CONF_OAUTH2_CLIENT_CREDENTIALS;
	struct oauth2_tokens t = { 0 };
	int64_t now = (int64_t)time(NULL);
	int r;

	r = oauth2_tokens_load(req->path, &t);
	if (r == 0 && !force && t.access_token != NULL &&
	    t.expires_at - now > OAUTH2_EXPIRY_MARGIN) {
		req->result.tokens = t;
		oauth2_result_set(req, OAUTH2_OK, "%s", "");
		oauth2_request_finish(req);
		return 0;
	}
	if (r == -ENOMEM)
		return r;
	/* App-only tokens are simply fetched again; nothing is lost. */
	if (r == 0 || (cc && r != -EPERM))
		r = oauth2_get_grant(req, p, &t);
	else {
		oauth2_get_unusable(req, r);
		r = 0;
	}
	oauth2_tokens_clear(&t);
	return r;
}

int
oauth2_token_get(struct oauth2_client *c, const struct conf_profile *p,
    const char *path, bool force, oauth2_cb cb, void *arg,
    struct oauth2_request **ret)
{
	struct oauth2_request *req;
	int r;

	if (!p->auth.oauth2.enabled || path == NULL)
		return -EINVAL;
	if ((r = oauth2_request_new(c, OAUTH2_K_GET, p, cb, arg, &req)) < 0)
		return r;
	if ((req->path = strdup(path)) == NULL)
		r = -ENOMEM;
	else
		r = oauth2_get_decide(req, p, force);
	if (r < 0) {
		oauth2_request_cancel(req);
		return r;
	}
	if (ret != NULL)
		*ret = req;
	return 0;
}
