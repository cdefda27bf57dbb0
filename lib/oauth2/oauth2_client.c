/*
 * oauth2_client.c - libcurl's multi interface on the caller's libevent
 * loop: curl tells us which sockets and which timeout to watch
 * (CURLMOPT_SOCKETFUNCTION, CURLMOPT_TIMERFUNCTION), libevent tells curl
 * when they fire.  Nothing here blocks.  Also the life of a request: its
 * easy handle, its bounded response buffer, and the zero timer that
 * delivers its result so a callback never runs inside a call of ours.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "base/log.h"
#include "base/util.h"
#include "oauth2_private.h"

struct oauth2_sock {
	struct oauth2_client	*c;
	struct oauth2_sock	*next, *prev;
	curl_socket_t		 fd;
	struct event		 ev;
};

struct oauth2_client {
	struct event_base	*base;
	CURLM			*multi;
	struct event		 timer;
	struct curl_slist	*headers;
	struct oauth2_request	*reqs;
	struct oauth2_sock	*socks;
	struct oauth2_saver	*saver;		/* oauth2_save.c */
};

static pthread_once_t oauth2_curl_once = PTHREAD_ONCE_INIT;
static CURLcode oauth2_curl_init_rc = CURLE_FAILED_INIT;

static void
oauth2_curl_init(void)
{
	oauth2_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- curl <-> libevent ------------------------------------------------- */

/* Every transfer curl has finished goes to its request. */
static void
oauth2_client_reap(struct oauth2_client *c)
{
	struct oauth2_request *req;
	CURLMsg *msg;
	CURLcode res;
	CURL *easy;
	int left;

	while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		easy = msg->easy_handle;
		res = msg->data.result;
		req = NULL;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&req);
		curl_multi_remove_handle(c->multi, easy);
		if (req != NULL)
			oauth2_result_http(req, res);
	}
}

static void
oauth2_sock_event(evutil_socket_t fd, short what, void *arg)
{
	struct oauth2_sock *s = arg;
	struct oauth2_client *c = s->c;
	int flags = 0, running;

	if (what & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	/* May free `s` through oauth2_sock_cb(CURL_POLL_REMOVE). */
	curl_multi_socket_action(c->multi, fd, flags, &running);
	oauth2_client_reap(c);
}

static void
oauth2_timer_event(evutil_socket_t fd, short what, void *arg)
{
	struct oauth2_client *c = arg;
	int running;

	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	oauth2_client_reap(c);
}

static void
oauth2_sock_drop(struct oauth2_client *c, struct oauth2_sock *s)
{
	event_del(&s->ev);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		c->socks = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	free(s);
}

static int
oauth2_sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp,
    void *sockp)
{
	struct oauth2_client *c = userp;
	struct oauth2_sock *s = sockp;
	short ev = EV_PERSIST;

	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			curl_multi_assign(c->multi, fd, NULL);
			oauth2_sock_drop(c, s);
		}
		return 0;
	}
	if (s == NULL) {
		if ((s = calloc(1, sizeof *s)) == NULL)
			return -1;
		s->c = c;
		s->fd = fd;
		if ((s->next = c->socks) != NULL)
			s->next->prev = s;
		c->socks = s;
		curl_multi_assign(c->multi, fd, s);
	} else
		event_del(&s->ev);
	if (what & CURL_POLL_IN)
		ev |= EV_READ;
	if (what & CURL_POLL_OUT)
		ev |= EV_WRITE;
	if (event_assign(&s->ev, c->base, fd, ev, oauth2_sock_event, s) < 0 ||
	    event_add(&s->ev, NULL) < 0)
		return -1;
	return 0;
}

static int
oauth2_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct oauth2_client *c = userp;
	struct timeval tv;

	if (timeout_ms < 0) {
		evtimer_del(&c->timer);
		return 0;
	}
	/* Even 0 goes through the loop: curl forbids re-entering it here. */
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	return evtimer_add(&c->timer, &tv) < 0 ? -1 : 0;
}

int
oauth2_client_new(struct event_base *base, struct oauth2_client **ret)
{
	struct oauth2_client *c;
	struct curl_slist *h;

	pthread_once(&oauth2_curl_once, oauth2_curl_init);
	if (oauth2_curl_init_rc != CURLE_OK)
		return -ENOMEM;
	if ((c = calloc(1, sizeof *c)) == NULL)
		return -ENOMEM;
	c->base = base;
	evtimer_assign(&c->timer, base, oauth2_timer_event, c);
	/* No "Expect: 100-continue" round trip; we want JSON back. */
	h = curl_slist_append(NULL, "Expect:");
	if (h != NULL && (c->headers = curl_slist_append(h,
	    "Accept: application/json")) == NULL)
		curl_slist_free_all(h);
	if (c->headers == NULL || (c->multi = curl_multi_init()) == NULL ||
	    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION,
	    oauth2_sock_cb) != CURLM_OK ||
	    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) != CURLM_OK ||
	    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION,
	    oauth2_timer_cb) != CURLM_OK ||
	    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c) != CURLM_OK) {
		oauth2_client_free(c);
		return -ENOMEM;
	}
	*ret = c;
	return 0;
}

void
oauth2_client_free(struct oauth2_client *c)
{
	if (c == NULL)
		return;
	while (c->reqs != NULL)
		oauth2_request_cancel(c->reqs);
	/* Waits for token files in flight: a rotated token is not lost. */
	oauth2_saver_free(c->saver);
	/* Closing cached connections calls oauth2_sock_cb(REMOVE). */
	if (c->multi != NULL)
		curl_multi_cleanup(c->multi);
	while (c->socks != NULL)
		oauth2_sock_drop(c, c->socks);
	evtimer_del(&c->timer);
	curl_slist_free_all(c->headers);
	free(c);
}

struct oauth2_request *
oauth2_client_requests(struct oauth2_client *c)
{
	return c->reqs;
}

struct event_base *
oauth2_client_base(struct oauth2_client *c)
{
	return c->base;
}

struct oauth2_saver **
oauth2_client_saver(struct oauth2_client *c)
{
	return &c->saver;
}

/* ---- requests ---------------------------------------------------------- */

static void
oauth2_request_unlink(struct oauth2_request *req)
{
	struct oauth2_client *c = req->c;

	if (req->prev != NULL)
		req->prev->next = req->next;
	else if (c->reqs == req)
		c->reqs = req->next;
	if (req->next != NULL)
		req->next->prev = req->prev;
	req->next = req->prev = NULL;
}

static void
oauth2_request_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct oauth2_request *req = arg;

	/* Unlinked first: the callback may free the client. */
	oauth2_request_unlink(req);
	req->cb(req->arg, &req->result);
	oauth2_request_free(req);
}

int
oauth2_request_new(struct oauth2_client *c, enum oauth2_kind kind,
    const struct conf_profile *p, oauth2_cb cb, void *arg,
    struct oauth2_request **ret)
{
	struct oauth2_request *req;

	if ((req = calloc(1, sizeof *req)) == NULL)
		return -ENOMEM;
	req->c = c;
	req->kind = kind;
	req->cb = cb;
	req->arg = arg;
	snprintf(req->profile, sizeof req->profile, "%s",
	    p->name != NULL ? p->name : "PROFILE");
	evtimer_assign(&req->done_ev, c->base, oauth2_request_deliver, req);
	if ((req->next = c->reqs) != NULL)
		req->next->prev = req;
	c->reqs = req;
	*ret = req;
	return 0;
}

void
oauth2_result_set(struct oauth2_request *req, enum oauth2_status st,
    const char *fmt, ...)
{
	va_list ap;

	req->result.status = st;
	va_start(ap, fmt);
	vsnprintf(req->result.why, sizeof req->result.why, fmt, ap);
	va_end(ap);
}

void
oauth2_request_finish(struct oauth2_request *req)
{
	static const struct timeval now = { 0, 0 };

	log_debug("oauth2: profile %s: %s", req->profile,
	    oauth2_status_name(req->result.status));
	req->done = true;
	if (evtimer_add(&req->done_ev, &now) < 0) {
		/* Cannot happen with a valid base; never lose the answer. */
		event_active(&req->done_ev, EV_TIMEOUT, 0);
	}
}

static size_t
oauth2_write_cb(char *data, size_t size, size_t n, void *arg)
{
	struct oauth2_request *req = arg;
	size_t len = size * n;

	if (len > OAUTH2_MAX_RESPONSE - req->resp_len) {
		req->resp_too_big = true;
		return 0;		/* CURLE_WRITE_ERROR */
	}
	memcpy(req->resp + req->resp_len, data, len);
	req->resp_len += len;
	return len;
}

static int
oauth2_easy_setup(struct oauth2_request *req, const char *url,
    const char *ca_file)
{
	CURL *e = req->easy;
	int bad = 0;

	bad |= curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "https") !=
	    CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_SSLVERSION,
	    (long)CURL_SSLVERSION_TLSv1_2) != CURLE_OK;
	if (ca_file != NULL)
		bad |= curl_easy_setopt(e, CURLOPT_CAINFO, ca_file) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 30L) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT, 60L) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, oauth2_write_cb) !=
	    CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, req) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "mailstow") != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->c->headers) !=
	    CURLE_OK;
	/* Not COPYPOSTFIELDS: our copy of the secrets is wiped at the end. */
	bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE,
	    (long)req->body_len) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, req) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->errbuf) !=
	    CURLE_OK;
	return bad ? -EINVAL : 0;
}

int
oauth2_request_post(struct oauth2_request *req, const char *url,
    const char *ca_file)
{
	int r;

	snprintf(req->url, sizeof req->url, "%s", url);
	if (req->easy == NULL && (req->easy = curl_easy_init()) == NULL)
		return -ENOMEM;
	if (req->resp == NULL &&
	    (req->resp = malloc(OAUTH2_MAX_RESPONSE + 1)) == NULL)
		return -ENOMEM;
	if ((r = oauth2_easy_setup(req, url, ca_file)) < 0)
		return r;
	if (curl_multi_add_handle(req->c->multi, req->easy) != CURLM_OK)
		return -ENOMEM;
	return 0;
}

void
oauth2_request_free(struct oauth2_request *req)
{
	size_t i;

	if (req == NULL)
		return;
	if (req->done)
		event_del(&req->done_ev);
	/* Never the case today (cancel hands it on); a write must not
	 * point at a freed request. */
	oauth2_save_detach(req, NULL);
	if (req->easy != NULL)
		curl_easy_cleanup(req->easy);
	if (req->body != NULL) {
		explicit_bzero(req->body, req->body_len);
		free(req->body);
	}
	if (req->resp != NULL) {
		explicit_bzero(req->resp, req->resp_len);
		free(req->resp);
	}
	secret_free(req->old_refresh);
	for (i = 0; i < NELEM(req->secrets); i++)
		secret_free(req->secrets[i]);
	free(req->conf_scope);
	free(req->path);
	oauth2_tokens_clear(&req->result.tokens);
	oauth2_device_clear(&req->result.device);
	free(req);
}

void
oauth2_request_cancel(struct oauth2_request *req)
{
	if (req == NULL)
		return;
	oauth2_request_unlink(req);
	if (req->parent != NULL)
		req->parent->inner = NULL;
	/* Those waiting on this one's refresh inherit it. */
	if (req->kind == OAUTH2_K_GET)
		oauth2_get_leader_gone(req);
	if (req->inner != NULL) {
		req->inner->parent = NULL;
		oauth2_request_cancel(req->inner);
		req->inner = NULL;
	}
	if (req->easy != NULL)
		curl_multi_remove_handle(req->c->multi, req->easy);
	oauth2_request_free(req);
}
