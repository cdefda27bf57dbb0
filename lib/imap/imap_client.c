/*
 * imap_client.c - the IMAP session up to the folder list: connection,
 * greeting, capabilities, STARTTLS, the dispatch of responses, LOGOUT and
 * the end of a session.  Login is in imap_auth.c, the folder list (LIST)
 * in imap_list.c, the folder walk (EXAMINE, SEARCH, FETCH) in imap_fetch.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <event2/event.h>

#include "base/log.h"
#include "base/sasl.h"
#include "base/util.h"
#include "imap/imap_client_private.h"

static const char *const imap_state_names[] = {
	"connecting", "greeting", "capability", "starttls", "tls handshake",
	"authentication", "capability after login", "list", "examine",
	"search", "fetch", "logout", "done",
};
_Static_assert(NELEM(imap_state_names) == _IMAP_S_MAX, "one name per state");

static void imap_readcb(struct bufferevent *, void *);
static void imap_eventcb(struct bufferevent *, short, void *);
static void imap_send_capability(struct imap_client *);
static void imap_conn_lost(struct imap_client *, short);

const char *
imap_state_name(enum imap_state s)
{
	return (unsigned)s < _IMAP_S_MAX ? imap_state_names[s] : "?";
}

void
imap_enter(struct imap_client *c, enum imap_state s)
{
	log_debug("imap %s: %s -> %s", c->host, imap_state_name(c->state),
	    imap_state_name(s));
	c->state = s;
}

void
imap_server_words(const struct imap_response *r, char *buf, size_t len)
{
	char code[128] = "", text[384];

	if (r->code != NULL) {
		char esc[96];

		str_escape(esc, sizeof esc, r->code, strlen(r->code));
		snprintf(code, sizeof code, "[%s] ", esc);
	}
	str_escape(text, sizeof text, r->text != NULL ? r->text : "",
	    r->text_len);
	snprintf(buf, len, "%s%s", code, text);
}

int
imap_send(struct imap_client *c, char *tag_out, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	char tag[16];
	va_list ap;
	int r;

	snprintf(tag, sizeof tag, "a%u", ++c->tagseq);
	if (evbuffer_add_printf(out, "%s ", tag) < 0)
		return -ENOMEM;
	va_start(ap, fmt);
	r = evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	if (r < 0 || evbuffer_add(out, "\r\n", 2) < 0)
		return -ENOMEM;
	if (tag_out != NULL)
		memcpy(tag_out, tag, sizeof tag);
	imap_arm_deadline(c);
	return 0;
}

/* Everything that ends a session goes through here once. */
static void
imap_teardown(struct imap_client *c)
{
	imap_msg_drop(c);
	session_core_stop(&c->core);
	if (c->conn != NULL) {
		net_free(c->conn);
		c->conn = NULL;
		c->bev = NULL;
	}
	secret_free(c->password);
	secret_free(c->token);
	c->password = c->token = NULL;
}

static void
imap_finish(struct imap_client *c, enum session_fail fail)
{
	if (c->finished)
		return;
	c->finished = true;
	imap_enter(c, IMAP_S_DONE);
	imap_teardown(c);
	session_core_report(&c->core, fail);
}

void
imap_fail(struct imap_client *c, enum session_fail fail, const char *fmt, ...)
{
	va_list ap;

	if (c->finished)
		return;
	va_start(ap, fmt);
	session_core_vwhy(&c->core, fmt, ap);
	va_end(ap);
	/* A server may echo the secret into any text we keep. */
	imap_auth_redact(c, c->core.why);
	log_debug("imap %s: failed in %s: %s", c->host,
	    imap_state_name(c->state), c->core.why);
	imap_finish(c, fail);
}

/* A complete response, or 64 KiB of a message, is progress. */
void
imap_arm_deadline(struct imap_client *c)
{
	c->progress = 0;
	session_core_arm(&c->core);
}

static void
imap_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct imap_client *c = arg;

	imap_fail(c, SESSION_FAIL_TIMEOUT,
	    "the server at %s made no progress for %u s while in %s; "
	    "check the server or raise server.timeout", net_peer(c->conn),
	    c->p.timeout_ms / 1000, imap_state_name(c->state));
}

/* "AUTH=NAME": the mechanism's bit, and its name for messages. */
static void
imap_caps_auth(struct imap_client *c, const struct imap_value *v)
{
	size_t have = strlen(c->auth_mechs);
	char esc[64];

	if (v->type != IMAP_V_ATOM || v->len <= 5 ||
	    strncasecmp(v->str, "AUTH=", 5) != 0)
		return;
	if (strcasecmp(v->str + 5, "XOAUTH2") == 0)
		c->caps |= IMAP_CAP_AUTH_XOAUTH2;
	else if (strcasecmp(v->str + 5, "OAUTHBEARER") == 0)
		c->caps |= IMAP_CAP_AUTH_OAUTHBEARER;
	str_escape(esc, sizeof esc, v->str + 5, v->len - 5);
	/* Bounded: a long list is cut, it only feeds a message. */
	if (have + strlen(esc) + 2 < sizeof c->auth_mechs)
		snprintf(c->auth_mechs + have, sizeof c->auth_mechs - have,
		    "%s%s", have > 0 ? " " : "", esc);
}

static void
imap_caps_parse(struct imap_client *c, const struct imap_value *v, size_t n)
{
	static const struct { const char *name; unsigned bit; } known[] = {
		{ "IMAP4rev1", IMAP_CAP_IMAP4REV1 },
		{ "STARTTLS", IMAP_CAP_STARTTLS },
		{ "LOGINDISABLED", IMAP_CAP_LOGINDISABLED },
		{ "AUTH=PLAIN", IMAP_CAP_AUTH_PLAIN },
		{ "SASL-IR", IMAP_CAP_SASL_IR },
		{ "LITERAL+", IMAP_CAP_LITERALPLUS },
		{ "ESEARCH", IMAP_CAP_ESEARCH },
		{ "CONDSTORE", IMAP_CAP_CONDSTORE },
	};
	size_t i, k;

	c->caps = 0;
	c->caps_known = true;
	c->auth_mechs[0] = '\0';
	for (i = 0; i < n; i++) {
		for (k = 0; k < NELEM(known); k++)
			if (imap_value_is(&v[i], known[k].name))
				c->caps |= known[k].bit;
		imap_caps_auth(c, &v[i]);
	}
}

/* A [CAPABILITY ...] code in any status response updates the list. */
static void
imap_caps_from_code(struct imap_client *c, const struct imap_response *r)
{
	if (r->code != NULL && strcasecmp(r->code, "CAPABILITY") == 0)
		imap_caps_parse(c, r->code_args, r->n_code_args);
}

static void
imap_after_caps(struct imap_client *c)
{
	if (!(c->caps & IMAP_CAP_IMAP4REV1)) {
		imap_fail(c, SESSION_FAIL_PROTOCOL,
		    "%s does not announce IMAP4rev1; it is not an IMAP server "
		    "this client can talk to", net_peer(c->conn));
		return;
	}
	if (c->p.net.tls == NET_TLS_STARTTLS && !net_is_tls(c->conn)) {
		if (!(c->caps & IMAP_CAP_STARTTLS)) {
			imap_fail(c, SESSION_FAIL_TLS,
			    "%s does not offer STARTTLS; refusing to log in "
			    "without TLS (use protocol imaps, or check that "
			    "the server has TLS enabled)", net_peer(c->conn));
			return;
		}
		imap_enter(c, IMAP_S_STARTTLS);
		if (imap_send(c, c->tag, "STARTTLS") < 0)
			imap_fail(c, SESSION_FAIL_LOCAL, "out of memory");
		return;
	}
	imap_auth_start(c);
}

static void
imap_tls_ready(struct net_conn *conn, int err, const char *why, void *arg)
{
	struct imap_client *c = arg;

	if (err < 0) {
		imap_fail(c, SESSION_FAIL_TLS, "STARTTLS with %s failed: %s",
		    net_peer(conn), why);
		return;
	}
	/*
	 * Forget everything learnt in clear text (RFC 3501 6.2.1): the
	 * capabilities are asked again, and a new parser starts empty.
	 */
	c->bev = net_bev(conn);
	bufferevent_setcb(c->bev, imap_readcb, NULL, imap_eventcb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->caps = 0;
	c->caps_known = false;
	imap_send_capability(c);
}

static void
imap_on_starttls(struct imap_client *c, const struct imap_response *r)
{
	char words[512];
	int err;

	if (r->status != IMAP_ST_OK) {
		imap_server_words(r, words, sizeof words);
		imap_fail(c, SESSION_FAIL_TLS,
		    "%s refused STARTTLS: %s; refusing to continue without TLS",
		    net_peer(c->conn), words);
		return;
	}
	imap_enter(c, IMAP_S_HANDSHAKE);
	err = net_starttls(c->conn, imap_tls_ready, c);
	if (err == -EPROTO)
		imap_fail(c, SESSION_FAIL_TLS,
		    "%s sent data after its STARTTLS answer and before the TLS "
		    "handshake; this is what a STARTTLS injection attack "
		    "looks like, so the session was closed", net_peer(c->conn));
	else if (err < 0)
		imap_fail(c, SESSION_FAIL_TLS, "STARTTLS with %s failed: %s",
		    net_peer(c->conn), strerror(-err));
}

static void
imap_send_capability(struct imap_client *c)
{
	imap_enter(c, c->state == IMAP_S_AUTH ? IMAP_S_POSTAUTH_CAPABILITY :
	    IMAP_S_CAPABILITY);
	if (imap_send(c, c->tag, "CAPABILITY") < 0)
		imap_fail(c, SESSION_FAIL_LOCAL, "out of memory");
}

/* Logged in: capabilities may change now (RFC 3501 7.2.1). */
static void
imap_after_login(struct imap_client *c, const struct imap_response *r)
{
	if (r->code != NULL && strcasecmp(r->code, "CAPABILITY") == 0) {
		imap_enter(c, IMAP_S_POSTAUTH_CAPABILITY);
		c->ops->ready(c->arg, net_tls_summary(c->conn));
		imap_enter(c, IMAP_S_LIST);
		if (imap_send(c, c->tag, "LIST \"\" \"*\"") < 0)
			imap_fail(c, SESSION_FAIL_LOCAL, "out of memory");
		return;
	}
	imap_send_capability(c);
}

static void
imap_on_greeting(struct imap_client *c, const struct imap_response *r)
{
	char words[512];

	imap_server_words(r, words, sizeof words);
	if (r->type != IMAP_R_UNTAGGED || (r->status != IMAP_ST_OK &&
	    r->status != IMAP_ST_PREAUTH)) {
		imap_fail(c, r->status == IMAP_ST_BYE ? SESSION_FAIL_CONNECT :
		    SESSION_FAIL_PROTOCOL, "%s did not greet as an IMAP "
		    "server: %s", net_peer(c->conn), words);
		return;
	}
	if (r->status == IMAP_ST_PREAUTH) {
		/*
		 * PREAUTH skips the not-authenticated state, where STARTTLS
		 * lives: on a STARTTLS profile it is a downgrade.
		 */
		imap_fail(c, SESSION_FAIL_TLS, "%s sent a PREAUTH greeting, "
		    "which rules out STARTTLS and the login of auth.user; "
		    "refusing the session", net_peer(c->conn));
		return;
	}
	imap_caps_from_code(c, r);
	if (c->caps_known)
		imap_after_caps(c);
	else
		imap_send_capability(c);
}

static void
imap_on_tagged(struct imap_client *c, const struct imap_response *r)
{
	char words[512];

	if (c->state == IMAP_S_EXAMINE || c->state == IMAP_S_SEARCH ||
	    c->state == IMAP_S_FETCH) {
		imap_walk_tagged(c, r);
		return;
	}
	if (strcmp(r->tag, c->tag) != 0) {
		char esc[64];

		str_escape(esc, sizeof esc, r->tag, strlen(r->tag));
		imap_fail(c, SESSION_FAIL_PROTOCOL, "%s answered a command "
		    "that was never sent (tag %s)", net_peer(c->conn), esc);
		return;
	}
	imap_caps_from_code(c, r);
	switch (c->state) {
	case IMAP_S_CAPABILITY:
	case IMAP_S_POSTAUTH_CAPABILITY:
		if (r->status != IMAP_ST_OK || !c->caps_known) {
			imap_server_words(r, words, sizeof words);
			imap_fail(c, SESSION_FAIL_PROTOCOL, "CAPABILITY failed "
			    "at %s: %s", net_peer(c->conn), words);
		} else if (c->state == IMAP_S_CAPABILITY) {
			imap_after_caps(c);
		} else {
			c->ops->ready(c->arg, net_tls_summary(c->conn));
			imap_enter(c, IMAP_S_LIST);
			if (imap_send(c, c->tag, "LIST \"\" \"*\"") < 0)
				imap_fail(c, SESSION_FAIL_LOCAL, "out of memory");
		}
		break;
	case IMAP_S_STARTTLS:
		imap_on_starttls(c, r);
		break;
	case IMAP_S_AUTH:
		if (imap_auth_tagged(c, r) == 0)
			imap_after_login(c, r);
		break;
	case IMAP_S_LIST:
		imap_list_done(c, r);
		break;
	case IMAP_S_LOGOUT:
		imap_finish(c, SESSION_OK);
		break;
	default:
		imap_fail(c, SESSION_FAIL_PROTOCOL, "%s sent a tagged response "
		    "in state %s", net_peer(c->conn), imap_state_name(c->state));
	}
}

static void
imap_on_untagged(struct imap_client *c, const struct imap_response *r)
{
	char words[512];

	if (r->status == IMAP_ST_BYE) {
		imap_server_words(r, words, sizeof words);
		imap_auth_redact(c, words);
		snprintf(c->bye, sizeof c->bye, "%s", words);
		return;
	}
	if (r->status == IMAP_ST_PREAUTH) {
		imap_fail(c, SESSION_FAIL_PROTOCOL, "%s sent PREAUTH after "
		    "its greeting", net_peer(c->conn));
		return;
	}
	if (r->status == IMAP_ST_OK || r->status == IMAP_ST_NO ||
	    r->status == IMAP_ST_BAD) {
		if (r->code != NULL && strcasecmp(r->code, "ALERT") == 0) {
			imap_server_words(r, words, sizeof words);
			imap_auth_redact(c, words);
			c->ops->event(c->arg, LOG_LVL_WARN, NULL, words);
		}
		/* Capabilities learnt before TLS never count (RFC 3501 6.2.1). */
		if (c->state != IMAP_S_STARTTLS)
			imap_caps_from_code(c, r);
	} else if (strcmp(r->keyword, "CAPABILITY") == 0) {
		if (c->state != IMAP_S_STARTTLS)
			imap_caps_parse(c, r->args, r->n_args);
	} else if (strcmp(r->keyword, "LIST") == 0 && c->state == IMAP_S_LIST) {
		imap_list_entry(c, r);
		return;
	}
	if (c->state == IMAP_S_EXAMINE || c->state == IMAP_S_SEARCH ||
	    c->state == IMAP_S_FETCH)
		imap_walk_untagged(c, r);
}

static void
imap_dispatch(struct imap_client *c, const struct imap_response *r)
{
	/*
	 * Only progress on the command in flight renews the deadline: an
	 * answer, a continuation, a LIST entry (bounded by the folder
	 * limit).  Untagged "* OK" chatter or flag updates are not progress,
	 * or a server could hold a session forever with them.  Message
	 * bodies renew it as their bytes arrive.
	 */
	if (r->type != IMAP_R_UNTAGGED || strcmp(r->keyword, "LIST") == 0)
		imap_arm_deadline(c);
	if (c->state == IMAP_S_GREETING) {
		imap_on_greeting(c, r);
		return;
	}
	switch (r->type) {
	case IMAP_R_TAGGED:
		imap_on_tagged(c, r);
		break;
	case IMAP_R_CONTINUE:
		imap_auth_continue(c, r);
		break;
	case IMAP_R_UNTAGGED:
		imap_on_untagged(c, r);
		break;
	}
}

static void
imap_readcb(struct bufferevent *bev, void *arg)
{
	struct imap_client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	const struct imap_response *r;
	int n;

	while (!c->finished && !c->core.paused) {
		/* Not a byte more once STARTTLS is answered (see net_starttls). */
		if (c->state == IMAP_S_HANDSHAKE)
			return;
		n = imap_parser_feed(c->parser, in, &r);
		if (n == 0) {
			if (c->core.lost)
				imap_conn_lost(c, c->core.lost);
			return;
		}
		if (n < 0) {
			imap_fail(c, n == -ENOMEM || n == -EIO || n == -ENOSPC ?
			    SESSION_FAIL_LOCAL : SESSION_FAIL_PROTOCOL,
			    "in %s: %s", imap_state_name(c->state),
			    imap_parser_error(c->parser));
			return;
		}
		imap_dispatch(c, r);
	}
}

/*
 * Why a connection broke: the socket's errno, else OpenSSL's word (a TLS
 * peer that resets leaves errno 0, and "Success" helps nobody).
 */
static void
imap_conn_error(struct bufferevent *bev, char *buf, size_t len)
{
	unsigned long e = bufferevent_get_openssl_error(bev);
	int err = EVUTIL_SOCKET_ERROR();

	if (err != 0)
		snprintf(buf, len, "%s", evutil_socket_error_to_string(err));
	else if (e != 0)
		ERR_error_string_n(e, buf, len);
	else
		snprintf(buf, len, "the server reset or closed the connection "
		    "without a clean TLS shutdown");
}

static void
imap_conn_lost(struct imap_client *c, short what)
{
	if (c->state == IMAP_S_LOGOUT) {
		imap_finish(c, SESSION_OK);
		return;
	}
	if (what & BEV_EVENT_EOF)
		imap_fail(c, SESSION_FAIL_CONNECT, "%s closed the connection "
		    "during %s%s%s", net_peer(c->conn), imap_state_name(c->state),
		    c->bye[0] ? "; it said: " : "", c->bye);
	else
		imap_fail(c, SESSION_FAIL_CONNECT, "connection to %s failed "
		    "during %s: %s", net_peer(c->conn),
		    imap_state_name(c->state), c->core.lost_err);
}

static void
imap_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct imap_client *c = arg;

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (what & BEV_EVENT_ERROR)
		imap_conn_error(bev, c->core.lost_err,
		    sizeof c->core.lost_err);
	/*
	 * Whole replies that arrived before the close still count: read
	 * them first (now, or on resume when paused); the close is reported
	 * when the protocol needs bytes that will not come.
	 */
	if (c->state != IMAP_S_HANDSHAKE &&
	    evbuffer_get_length(bufferevent_get_input(bev)) > 0) {
		c->core.lost = what;
		if (!c->core.paused)
			imap_readcb(bev, c);
		return;
	}
	imap_conn_lost(c, what);
}

static void
imap_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct imap_client *c = arg;

	if (c->bev != NULL && !c->finished && !c->core.paused)
		imap_readcb(c->bev, c);
}

static void
imap_connected(struct net_conn *conn, int err, const char *why, void *arg)
{
	struct imap_client *c = arg;

	if (err < 0) {
		imap_fail(c, session_connect_fail(err), "%s", why);
		return;
	}
	c->bev = net_bev(conn);
	bufferevent_setcb(c->bev, imap_readcb, NULL, imap_eventcb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	imap_enter(c, IMAP_S_GREETING);
	imap_arm_deadline(c);
}

static int
imap_client_copy_params(struct imap_client *c, const struct imap_client_params *p)
{
	c->p = *p;
	if (p->net.host == NULL || p->user == NULL ||
	    (p->password == NULL && p->oauth2_token == NULL))
		return -EINVAL;
	c->host = strdup(p->net.host);
	c->ca_file = xstrdup_or_null(p->net.ca_file);
	c->server_name = xstrdup_or_null(p->net.server_name);
	c->user = strdup(p->user);
	c->password = xstrdup_or_null(p->password);
	c->token = xstrdup_or_null(p->oauth2_token);
	c->authzid = xstrdup_or_null(p->authzid);
	if ((p->authzid != NULL && c->authzid == NULL) ||
	    (p->password != NULL && c->password == NULL) ||
	    (p->oauth2_token != NULL && c->token == NULL) ||
	    c->host == NULL || c->user == NULL ||
	    (p->net.ca_file != NULL && c->ca_file == NULL) ||
	    (p->net.server_name != NULL && c->server_name == NULL))
		return -ENOMEM;
	c->p.net.host = c->host;
	c->p.net.ca_file = c->ca_file;
	c->p.net.server_name = c->server_name;
	c->p.user = c->user;
	c->p.password = NULL;
	c->p.oauth2_token = NULL;
	if (c->p.limits.max_line == 0)
		imap_limits_default(&c->p.limits);
	/*
	 * Literals up to the message cap stream into the archive; one above
	 * it is drained into nothing and reported as too large, so that it
	 * cannot block the messages after it.  Twice the cap plus 64 MiB
	 * bounds what a server can make us read for one literal.
	 */
	if (p->max_message_size < (UINT64_MAX >> 2))
		c->p.limits.max_literal = 2 * p->max_message_size + (64ULL << 20);
	if (c->p.fetch_batch == 0)
		c->p.fetch_batch = 64;
	if (c->p.fetch_window == 0 || c->p.fetch_window > IMAP_MAX_WINDOW)
		c->p.fetch_window = 4;
	if (c->p.max_folder_messages == 0)
		c->p.max_folder_messages = 10000000;
	if (c->p.timeout_ms == 0)
		c->p.timeout_ms = 60000;
	return 0;
}

int
imap_client_start(struct event_base *base, struct evdns_base *dns,
    const struct imap_client_params *p, const struct session_ops *ops,
    void *arg, struct imap_client **ret)
{
	static const struct imap_literal_ops lops = {
		imap_literal_begin, imap_literal_data, imap_literal_end,
	};
	struct imap_client *c;
	int r;

	if ((c = calloc(1, sizeof *c)) == NULL)
		return -ENOMEM;
	c->base = base;
	c->dns = dns;
	c->ops = ops;
	c->arg = arg;
	imap_uidset_init(&c->found);
	if ((r = imap_client_copy_params(c, p)) < 0)
		goto fail;
	if ((r = session_core_init(&c->core, base, ops, arg, c->p.timeout_ms,
	    imap_deadline_cb, imap_resume_cb, c)) < 0)
		goto fail;
	if ((c->parser = imap_parser_new(&c->p.limits, &lops, c)) == NULL) {
		r = -ENOMEM;
		goto fail;
	}
	imap_enter(c, IMAP_S_CONNECTING);
	if ((r = net_connect(base, dns, &c->p.net, imap_connected, c,
	    &c->conn)) < 0)
		goto fail;
	*ret = c;
	return 0;
fail:
	imap_client_free(c);
	return r;
}

void
imap_client_pause(struct imap_client *c)
{
	if (c != NULL && !c->finished)
		session_core_pause(&c->core, c->bev);
}

void
imap_client_resume(struct imap_client *c)
{
	if (c != NULL && !c->finished &&
	    session_core_resume(&c->core, c->bev))
		c->progress = 0;
}

void
imap_client_cancel(struct imap_client *c)
{
	if (c == NULL || c->finished)
		return;
	snprintf(c->core.why, sizeof c->core.why, "stopped on request");
	imap_finish(c, SESSION_FAIL_CANCELLED);
}

void
imap_client_free(struct imap_client *c)
{
	if (c == NULL)
		return;
	imap_teardown(c);
	session_core_clear(&c->core);
	imap_parser_free(c->parser);
	imap_walk_reset(c);
	imap_uidset_clear(&c->found);
	imap_list_free(c);
	free(c->host);
	free(c->ca_file);
	free(c->server_name);
	free(c->user);
	free(c->authzid);
	free(c);
}
