/*
 * oauth2_result.c - what a finished transfer means: curl's error or the
 * HTTP status and body become an oauth2_status and one sentence saying
 * what happened and what to do.  The server's words are quoted escaped
 * and cut, after every secret of the request has been blotted out of
 * them: a server that echoes a refresh token must not put it in a log.
 */
#define _GNU_SOURCE	/* memmem */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/util.h"
#include "oauth2_private.h"

#define OAUTH2_WHY_URL	100	/* bytes of the endpoint in a `why` */
#define OAUTH2_WHY_CODE	64
#define OAUTH2_WHY_DESC	160

struct oauth2_words {
	char	url[OAUTH2_WHY_URL + 1];
	char	server[OAUTH2_WHY_CODE + OAUTH2_WHY_DESC + 8];
	char	code[OAUTH2_WHY_CODE + 1];	/* raw, for the mapping */
};

static const char *
oauth2_endpoint_name(const struct oauth2_request *req)
{
	return req->kind == OAUTH2_K_DEVICE_START ?
	    "the device authorization endpoint" : "the token endpoint";
}

static const char *
oauth2_endpoint_key(const struct oauth2_request *req)
{
	return req->kind == OAUTH2_K_DEVICE_START ?
	    "auth.oauth2.device_authorization_endpoint" :
	    "auth.oauth2.token_endpoint";
}

/* Overwrite every occurrence of the request's secrets with '*'. */
static void
oauth2_redact(const struct oauth2_request *req, char *text)
{
	size_t i, tlen = strlen(text), slen;
	char *p;

	for (i = 0; i < NELEM(req->secrets); i++) {
		if (req->secrets[i] == NULL ||
		    (slen = strlen(req->secrets[i])) == 0)
			continue;
		while ((p = memmem(text, tlen, req->secrets[i], slen)) != NULL)
			memset(p, '*', slen);
	}
}

/* Escape and cut, marking a cut with "...". */
static void
oauth2_quote(char *dst, size_t dstlen, const char *src)
{
	size_t len = strlen(src);

	str_escape(dst, dstlen, src, len);
	if (strlen(dst) < len && dstlen > 4)
		memcpy(dst + dstlen - 4, "...", 4);
}

static void
oauth2_words_server(const struct oauth2_request *req, char *code,
    char *desc, struct oauth2_words *w)
{
	char qcode[OAUTH2_WHY_CODE + 1], qdesc[OAUTH2_WHY_DESC + 1];

	oauth2_redact(req, code);
	snprintf(w->code, sizeof w->code, "%s", code);
	oauth2_quote(qcode, sizeof qcode, code);
	if (desc != NULL && desc[0] != '\0') {
		oauth2_redact(req, desc);
		oauth2_quote(qdesc, sizeof qdesc, desc);
		snprintf(w->server, sizeof w->server, "%s: \"%s\"", qcode,
		    qdesc);
	} else
		snprintf(w->server, sizeof w->server, "%s", qcode);
}

static void
oauth2_result_curl(struct oauth2_request *req, CURLcode res,
    const struct oauth2_words *w)
{
	char detail[200];
	const char *ep = oauth2_endpoint_name(req);

	oauth2_quote(detail, sizeof detail, req->errbuf[0] != '\0' ?
	    req->errbuf : curl_easy_strerror(res));
	switch (res) {
	case CURLE_WRITE_ERROR:
		if (!req->resp_too_big)
			break;
		oauth2_result_set(req, OAUTH2_ERR_PROTOCOL, "%s %s sent more "
		    "than %d bytes; check %s", ep, w->url, OAUTH2_MAX_RESPONSE,
		    oauth2_endpoint_key(req));
		return;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_USE_SSL_FAILED:
		oauth2_result_set(req, OAUTH2_ERR_TLS, "cannot verify %s %s "
		    "over TLS (%s); check auth.oauth2.ca_file or the system "
		    "CA store", ep, w->url, detail);
		return;
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
		oauth2_result_set(req, OAUTH2_ERR_CLIENT, "%s %s is not an "
		    "https URL (%s); check %s", ep, w->url, detail,
		    oauth2_endpoint_key(req));
		return;
	case CURLE_OUT_OF_MEMORY:
		oauth2_result_set(req, OAUTH2_ERR_LOCAL, "out of memory "
		    "while asking %s; try again", ep);
		return;
	default:
		break;
	}
	/* Said by a run and by `oauth2 login` alike: no promise of a run. */
	oauth2_result_set(req, OAUTH2_ERR_NETWORK, "cannot reach %s %s (%s); "
	    "check the network and %s, then try again", ep, w->url, detail,
	    oauth2_endpoint_key(req));
}

static void
oauth2_result_refused(struct oauth2_request *req, const struct oauth2_words *w)
{
	const char *ep = oauth2_endpoint_name(req), *p = req->profile;

	if (strcmp(w->code, "invalid_grant") == 0 &&
	    req->kind == OAUTH2_K_CLIENT_CREDENTIALS)
		oauth2_result_set(req, OAUTH2_ERR_CLIENT, "%s refused the "
		    "client credentials grant (%s); check "
		    "auth.oauth2.client_id, its secret and the app's "
		    "permissions", ep, w->server);
	else if (strcmp(w->code, "invalid_grant") == 0)
		oauth2_result_set(req, OAUTH2_ERR_LOGIN, "%s refused the "
		    "stored %s of profile %s (%s); run `mailstow oauth2 login "
		    "%s`", ep, req->kind == OAUTH2_K_DEVICE_POLL ?
		    "device code" : "refresh token", p, w->server, p);
	else if (strcmp(w->code, "authorization_pending") == 0)
		oauth2_result_set(req, OAUTH2_ERR_PENDING, "the login is not "
		    "approved yet (%s); approve it in the browser", w->server);
	else if (strcmp(w->code, "slow_down") == 0)
		oauth2_result_set(req, OAUTH2_ERR_SLOW_DOWN, "%s asks to poll "
		    "less often (%s)", ep, w->server);
	else if (strcmp(w->code, "access_denied") == 0)
		oauth2_result_set(req, OAUTH2_ERR_DENIED, "the login was "
		    "denied (%s); run `mailstow oauth2 login %s` again and "
		    "approve it", w->server, p);
	else if (strcmp(w->code, "expired_token") == 0)
		oauth2_result_set(req, OAUTH2_ERR_EXPIRED, "the login code "
		    "expired before it was approved (%s); run `mailstow oauth2 "
		    "login %s` again", w->server, p);
	else if (strcmp(w->code, "invalid_scope") == 0)
		oauth2_result_set(req, OAUTH2_ERR_CLIENT, "%s refused the "
		    "scope (%s); check auth.oauth2.scope", ep, w->server);
	else if (strcmp(w->code, "invalid_client") == 0 ||
	    strcmp(w->code, "unauthorized_client") == 0 ||
	    strcmp(w->code, "unsupported_grant_type") == 0)
		oauth2_result_set(req, OAUTH2_ERR_CLIENT, "%s refused the "
		    "client (%s); check auth.oauth2.client_id and "
		    "auth.oauth2.client_secret_file", ep, w->server);
	else
		oauth2_result_set(req, OAUTH2_ERR_PROTOCOL, "%s refused the "
		    "request (%s); check the auth.oauth2 settings of profile "
		    "%s", ep, w->server, p);
}

/* A 2xx body: tokens or a device authorization. */
static void
oauth2_result_success(struct oauth2_request *req, long http,
    const struct oauth2_words *w)
{
	struct oauth2_result *res = &req->result;
	char err[128];
	int r;

	if (req->kind == OAUTH2_K_DEVICE_START)
		r = oauth2_parse_device_response(req->resp, req->resp_len,
		    &res->device, err, sizeof err);
	else
		r = oauth2_parse_token_response(req->resp, req->resp_len,
		    (int64_t)time(NULL), &res->tokens, err, sizeof err);
	if (r < 0) {
		oauth2_result_set(req, OAUTH2_ERR_PROTOCOL, "%s %s sent a "
		    "malformed answer (HTTP %ld: %s); check %s",
		    oauth2_endpoint_name(req), w->url, http, err,
		    oauth2_endpoint_key(req));
		return;
	}
	/* Many providers do not rotate: the old refresh token stays good. */
	if (res->tokens.refresh_token == NULL && req->old_refresh != NULL) {
		res->tokens.refresh_token = req->old_refresh;
		req->old_refresh = NULL;
	}
	if (req->kind != OAUTH2_K_DEVICE_START && res->tokens.scope == NULL) {
		res->tokens.scope = req->conf_scope;
		req->conf_scope = NULL;
	}
	oauth2_result_set(req, OAUTH2_OK, "%s", "");
}

static void
oauth2_result_answer(struct oauth2_request *req, long http,
    struct oauth2_words *w)
{
	char *code = NULL, *desc = NULL;
	int r;

	/* Some servers send an error object with 200; RFC 6749 5.1 forbids
	 * "error" in a success, so it is always an error. */
	r = oauth2_parse_error(req->resp, req->resp_len, &code, &desc);
	if (r == -ENOMEM) {
		oauth2_result_set(req, OAUTH2_ERR_LOCAL, "out of memory");
		return;
	}
	if (r == 0) {
		oauth2_words_server(req, code, desc, w);
		secret_free(code);
		secret_free(desc);
	}
	if (http >= 300 && http < 400)
		oauth2_result_set(req, OAUTH2_ERR_PROTOCOL, "%s %s answered "
		    "HTTP %ld, a redirect, which is not followed; give the "
		    "final URL in %s", oauth2_endpoint_name(req), w->url, http,
		    oauth2_endpoint_key(req));
	else if (http >= 500)
		oauth2_result_set(req, OAUTH2_ERR_NETWORK, "%s %s answered "
		    "HTTP %ld%s%s%s; the provider has a problem, the next run "
		    "tries again", oauth2_endpoint_name(req), w->url, http,
		    r == 0 ? " (" : "", r == 0 ? w->server : "",
		    r == 0 ? ")" : "");
	else if (r == 0)
		oauth2_result_refused(req, w);
	else if (http >= 200 && http < 300)
		oauth2_result_success(req, http, w);
	else
		oauth2_result_set(req, OAUTH2_ERR_PROTOCOL, "%s %s answered "
		    "HTTP %ld without an OAuth2 error object; check %s",
		    oauth2_endpoint_name(req), w->url, http,
		    oauth2_endpoint_key(req));
}

void
oauth2_result_http(struct oauth2_request *req, CURLcode res)
{
	struct oauth2_words w = { 0 };
	long http = 0;

	oauth2_quote(w.url, sizeof w.url, req->url);
	if (res != CURLE_OK)
		oauth2_result_curl(req, res, &w);
	else {
		curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &http);
		oauth2_result_answer(req, http, &w);
	}
	oauth2_request_finish(req);
}
