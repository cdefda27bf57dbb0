/*
 * pop3_client.c - the POP3 session up to the login and its end:
 * connection, greeting, CAPA, STLS, reading replies off the wire, QUIT,
 * and the deadline that ends a session whose server stops making
 * progress.  Login is in pop3_auth.c, the maildrop walk (STAT, UIDL,
 * LIST, RETR) in pop3_retr.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "base/log.h"
#include "base/util.h"
#include "pop3/pop3_client_private.h"

/* Listing bytes that count as progress for the deadline. */
#define POP3_PROGRESS_BYTES	(64 * 1024)

static const char *const pop3_state_names[] = {
	"connecting", "greeting", "capa", "stls", "tls handshake",
	"auth plain", "user", "pass", "apop", "capa after login", "stat",
	"uidl", "list", "retr", "quit", "done",
};
_Static_assert(NELEM(pop3_state_names) == _POP3_S_MAX, "one name per state");

static void pop3_readcb(struct bufferevent *, void *);
static void pop3_eventcb(struct bufferevent *, short, void *);
static void pop3_conn_lost(struct pop3_client *, short);

const char *
pop3_state_name(enum pop3_state s)
{
	return (unsigned)s < _POP3_S_MAX ? pop3_state_names[s] : "?";
}

void
pop3_enter(struct pop3_client *c, enum pop3_state s)
{
	log_debug("pop3 %s: %s -> %s", c->host, pop3_state_name(c->state),
	    pop3_state_name(s));
	c->state = s;
}

void
pop3_server_words(const struct pop3_status *st, char *buf, size_t len)
{
	char code[POP3_MAX_CODE * 4 + 4] = "", text[384];

	if (st->code != NULL) {
		char esc[POP3_MAX_CODE * 4 + 1];

		str_escape(esc, sizeof esc, st->code, st->code_len);
		snprintf(code, sizeof code, "[%s] ", esc);
	}
	str_escape(text, sizeof text, st->text, st->text_len);
	snprintf(buf, len, "%s%s", code, text[0] ? text : "(no text)");
}

int
pop3_send(struct pop3_client *c, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof line)
		return -EINVAL;
	log_debug("pop3 %s C: %s", c->host, line);
	if (evbuffer_add(out, line, (size_t)n) < 0 ||
	    evbuffer_add(out, "\r\n", 2) < 0)
		return -ENOMEM;
	pop3_arm_deadline(c);
	return 0;
}

int
pop3_send_secret(struct pop3_client *c, const char *prefix, const char *secret)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	/* Only the redacted form ever reaches the debug log. */
	log_debug("pop3 %s C: %s<redacted>", c->host, prefix);
	if (evbuffer_add(out, prefix, strlen(prefix)) < 0 ||
	    evbuffer_add(out, secret, strlen(secret)) < 0 ||
	    evbuffer_add(out, "\r\n", 2) < 0)
		return -ENOMEM;
	pop3_arm_deadline(c);
	return 0;
}

/* Everything that ends a session goes through here once. */
static void
pop3_teardown(struct pop3_client *c)
{
	pop3_msg_drop(c);
	c->in_body = false;
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
pop3_finish(struct pop3_client *c, enum session_fail fail)
{
	if (c->finished)
		return;
	c->finished = true;
	pop3_enter(c, POP3_S_DONE);
	pop3_teardown(c);
	session_core_report(&c->core, fail);
}

void
pop3_fail(struct pop3_client *c, enum session_fail fail, const char *fmt, ...)
{
	va_list ap;

	if (c->finished)
		return;
	va_start(ap, fmt);
	session_core_vwhy(&c->core, fmt, ap);
	va_end(ap);
	/* A server may echo the secret into any text we keep. */
	pop3_auth_redact(c, c->core.why);
	log_debug("pop3 %s: failed in %s: %s", c->host,
	    pop3_state_name(c->state), c->core.why);
	pop3_finish(c, fail);
}

/* A complete reply, or 64 KiB of a listing or message, is progress. */
void
pop3_arm_deadline(struct pop3_client *c)
{
	c->progress = 0;
	session_core_arm(&c->core);
}

static void
pop3_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pop3_client *c = arg;

	pop3_fail(c, SESSION_FAIL_TIMEOUT,
	    "the server at %s made no progress for %u s while in %s; "
	    "check the server or raise server.timeout", net_peer(c->conn),
	    c->p.timeout_ms / 1000, pop3_state_name(c->state));
}

void
pop3_quit(struct pop3_client *c)
{
	pop3_enter(c, POP3_S_QUIT);
	if (pop3_send(c, "QUIT") < 0)
		pop3_fail(c, SESSION_FAIL_LOCAL, "out of memory");
}

void
pop3_send_capa(struct pop3_client *c, enum pop3_state s)
{
	pop3_enter(c, s);
	if (pop3_send(c, "CAPA") < 0)
		pop3_fail(c, SESSION_FAIL_LOCAL, "out of memory");
}

static void
pop3_tls_ready(struct net_conn *conn, int err, const char *why, void *arg)
{
	struct pop3_client *c = arg;

	if (err < 0) {
		pop3_fail(c, SESSION_FAIL_TLS, "STLS with %s failed: %s",
		    net_peer(conn), why);
		return;
	}
	/*
	 * Forget everything learnt in clear text (RFC 2595 4): the
	 * capabilities are asked again, and the APOP timestamp came from
	 * an unprotected greeting but is only a nonce, so it may stay.
	 */
	c->bev = net_bev(conn);
	bufferevent_setcb(c->bev, pop3_readcb, NULL, pop3_eventcb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->caps = 0;
	c->capa_failed = false;
	pop3_send_capa(c, POP3_S_CAPA);
}

static void
pop3_on_stls(struct pop3_client *c, const struct pop3_status *st)
{
	char words[512];
	int err;

	if (st->kind != POP3_OK) {
		pop3_server_words(st, words, sizeof words);
		pop3_fail(c, SESSION_FAIL_TLS, "%s refused STLS: %s; refusing "
		    "to continue without TLS", net_peer(c->conn), words);
		return;
	}
	pop3_enter(c, POP3_S_HANDSHAKE);
	err = net_starttls(c->conn, pop3_tls_ready, c);
	if (err == -EPROTO)
		pop3_fail(c, SESSION_FAIL_TLS, "%s sent data after its STLS "
		    "answer and before the TLS handshake; this is what a "
		    "STARTTLS injection attack looks like, so the session was "
		    "closed", net_peer(c->conn));
	else if (err < 0)
		pop3_fail(c, SESSION_FAIL_TLS, "STLS with %s failed: %s",
		    net_peer(c->conn), strerror(-err));
}

/* The capabilities are known (or CAPA failed): go on. */
static void
pop3_after_capa(struct pop3_client *c)
{
	if (c->state == POP3_S_POSTAUTH_CAPA) {
		c->ops->ready(c->arg, net_tls_summary(c->conn));
		if (!c->finished)
			pop3_walk_start(c);
		return;
	}
	if (c->p.net.tls == NET_TLS_STARTTLS && !net_is_tls(c->conn)) {
		if (!(c->caps & POP3_CAP_STLS)) {
			pop3_fail(c, SESSION_FAIL_TLS, "%s does not offer STLS%s; "
			    "refusing to log in without TLS (use protocol "
			    "pop3s, or check that the server has TLS enabled)",
			    net_peer(c->conn), c->capa_failed ?
			    " (it refused CAPA)" : "");
			return;
		}
		pop3_enter(c, POP3_S_STLS);
		if (pop3_send(c, "STLS") < 0)
			pop3_fail(c, SESSION_FAIL_LOCAL, "out of memory");
		return;
	}
	pop3_start_auth(c);
}

static void
pop3_on_capa(struct pop3_client *c, const struct pop3_status *st)
{
	if (st->kind == POP3_OK) {
		/* The listing replaces what was known (RFC 2449 5). */
		c->caps = 0;
		c->capa_failed = false;
		c->in_multi = true;
		c->listing_lines = 0;
		return;
	}
	/* RFC 2449 is optional: an old server knows only RFC 1939. */
	if (c->state == POP3_S_CAPA) {
		c->caps = 0;
		c->capa_failed = true;
	}
	pop3_after_capa(c);
}

static void
pop3_on_greeting(struct pop3_client *c, const struct pop3_status *st)
{
	char words[512];
	size_t off, len;

	if (st->kind != POP3_OK) {
		pop3_server_words(st, words, sizeof words);
		pop3_fail(c, SESSION_FAIL_CONNECT, "%s did not greet as a POP3 "
		    "server: %s", net_peer(c->conn), words);
		return;
	}
	if (pop3_apop_timestamp(st->text, st->text_len, &off, &len) == 0 &&
	    len < sizeof c->timestamp) {
		memcpy(c->timestamp, st->text + off, len);
		c->timestamp[len] = '\0';
	}
	pop3_send_capa(c, POP3_S_CAPA);
}

/* The end of a listing, or one of its lines. */
static void
pop3_on_multi(struct pop3_client *c, char *line, size_t len)
{
	c->progress += len + 2;
	if (c->progress >= POP3_PROGRESS_BYTES)
		pop3_arm_deadline(c);
	if (pop3_multi_line(line, &len) == 1) {
		c->in_multi = false;
		pop3_arm_deadline(c);
		if (c->state == POP3_S_CAPA || c->state == POP3_S_POSTAUTH_CAPA)
			pop3_after_capa(c);
		else
			pop3_walk_listing_end(c);
		return;
	}
	if (c->state == POP3_S_CAPA || c->state == POP3_S_POSTAUTH_CAPA) {
		/* Bounded like every listing; CAPA has a dozen lines. */
		if (++c->listing_lines > 1000) {
			pop3_fail(c, SESSION_FAIL_PROTOCOL, "%s sent more than "
			    "1000 CAPA lines", net_peer(c->conn));
			return;
		}
		c->caps |= pop3_capa_parse(line, len);
		return;
	}
	pop3_walk_line(c, line, len);
}

static void
pop3_on_status(struct pop3_client *c, const char *line, size_t len)
{
	struct pop3_status st;
	char esc[256];

	if (pop3_status_parse(line, len, &st) < 0 ||
	    (st.kind == POP3_CONT && c->state != POP3_S_AUTH)) {
		str_escape(esc, sizeof esc, line, len);
		pop3_fail(c, SESSION_FAIL_PROTOCOL, "%s sent \"%s\" in %s, "
		    "which is not a POP3 status line", net_peer(c->conn), esc,
		    pop3_state_name(c->state));
		return;
	}
	pop3_arm_deadline(c);
	switch (c->state) {
	case POP3_S_GREETING:
		pop3_on_greeting(c, &st);
		break;
	case POP3_S_CAPA:
	case POP3_S_POSTAUTH_CAPA:
		pop3_on_capa(c, &st);
		break;
	case POP3_S_STLS:
		pop3_on_stls(c, &st);
		break;
	case POP3_S_AUTH:
	case POP3_S_USER:
	case POP3_S_PASS:
	case POP3_S_APOP:
		pop3_auth_status(c, &st);
		break;
	case POP3_S_STAT:
	case POP3_S_UIDL:
	case POP3_S_LIST:
	case POP3_S_RETR:
		pop3_walk_status(c, &st);
		break;
	case POP3_S_QUIT:
		/* -ERR to QUIT means deletions failed; there were none. */
		pop3_finish(c, SESSION_OK);
		break;
	default:
		pop3_fail(c, SESSION_FAIL_PROTOCOL, "%s sent a reply nobody "
		    "asked for in %s", net_peer(c->conn),
		    pop3_state_name(c->state));
	}
}

static void
pop3_line_error(struct pop3_client *c, int err)
{
	if (err == -EMSGSIZE)
		pop3_fail(c, SESSION_FAIL_PROTOCOL, "%s sent a line longer than "
		    "%d bytes in %s", net_peer(c->conn), POP3_MAX_LINE,
		    pop3_state_name(c->state));
	else if (err == -EPROTO)
		pop3_fail(c, SESSION_FAIL_PROTOCOL, "%s sent a NUL byte in a "
		    "line in %s", net_peer(c->conn), pop3_state_name(c->state));
	else
		pop3_fail(c, SESSION_FAIL_LOCAL, "reading from %s: %s",
		    net_peer(c->conn), strerror(-err));
}

static void
pop3_readcb(struct bufferevent *bev, void *arg)
{
	struct pop3_client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;
	int n;

	while (!c->finished && !c->core.paused) {
		/* Not a byte more once STLS is answered (see net_starttls). */
		if (c->state == POP3_S_HANDSHAKE)
			return;
		if (c->in_body) {
			if (pop3_body_feed(c, in) <= 0)
				break;
			continue;
		}
		n = pop3_line_take(in, c->line, sizeof c->line, &len);
		if (n == 0)
			break;
		if (n < 0) {
			pop3_line_error(c, n);
			return;
		}
		if (c->in_multi)
			pop3_on_multi(c, c->line, len);
		else
			pop3_on_status(c, c->line, len);
	}
	/* A close seen while paused: report it once the replies that came
	 * before it are used up and more bytes are still needed. */
	if (!c->finished && !c->core.paused && c->core.lost)
		pop3_conn_lost(c, c->core.lost);
}

static void
pop3_conn_lost(struct pop3_client *c, short what)
{
	char where[96] = "";

	if (c->state == POP3_S_QUIT) {
		pop3_finish(c, SESSION_OK);
		return;
	}
	if (c->in_body && c->n_inflight > 0)
		snprintf(where, sizeof where, " in the middle of message %u "
		    "(not archived; the next run fetches it)",
		    c->plan[c->inflight[0]] + 1);
	if (what & BEV_EVENT_EOF)
		pop3_fail(c, SESSION_FAIL_CONNECT, "%s closed the connection "
		    "during %s%s", net_peer(c->conn), pop3_state_name(c->state),
		    where);
	else
		pop3_fail(c, SESSION_FAIL_CONNECT, "connection to %s failed "
		    "during %s%s: %s", net_peer(c->conn),
		    pop3_state_name(c->state), where, c->core.lost_err);
}

static void
pop3_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct pop3_client *c = arg;

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (what & BEV_EVENT_ERROR)
		snprintf(c->core.lost_err, sizeof c->core.lost_err, "%s",
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	/* Replies that came before the close first (see imap_eventcb). */
	if (c->state != POP3_S_HANDSHAKE &&
	    evbuffer_get_length(bufferevent_get_input(bev)) > 0) {
		c->core.lost = what;
		if (!c->core.paused)
			pop3_readcb(bev, c);
		return;
	}
	pop3_conn_lost(c, what);
}

static void
pop3_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pop3_client *c = arg;

	if (c->bev != NULL && !c->finished && !c->core.paused)
		pop3_readcb(c->bev, c);
}

static void
pop3_connected(struct net_conn *conn, int err, const char *why, void *arg)
{
	struct pop3_client *c = arg;

	if (err < 0) {
		/* By the error, not its words: "timed out in the TLS
		 * handshake" is a timeout, as for IMAP. */
		pop3_fail(c, session_connect_fail(err), "%s", why);
		return;
	}
	c->bev = net_bev(conn);
	bufferevent_setcb(c->bev, pop3_readcb, NULL, pop3_eventcb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	pop3_enter(c, POP3_S_GREETING);
	pop3_arm_deadline(c);
}

static int
pop3_client_copy_params(struct pop3_client *c, const struct pop3_client_params *p)
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
	if (c->p.timeout_ms == 0)
		c->p.timeout_ms = 60000;
	if (c->p.max_message_size == 0)
		c->p.max_message_size = 256ULL << 20;
	if (c->p.max_messages == 0)
		c->p.max_messages = 1000000;
	if (c->p.window == 0 || c->p.window > POP3_MAX_WINDOW)
		c->p.window = 4;
	return 0;
}

int
pop3_client_start(struct event_base *base, struct evdns_base *dns,
    const struct pop3_client_params *p, const struct session_ops *ops,
    void *arg, struct pop3_client **ret)
{
	struct pop3_client *c;
	int r;

	if ((c = calloc(1, sizeof *c)) == NULL)
		return -ENOMEM;
	c->base = base;
	c->dns = dns;
	c->ops = ops;
	c->arg = arg;
	if ((r = pop3_client_copy_params(c, p)) < 0)
		goto fail;
	if ((r = session_core_init(&c->core, base, ops, arg, c->p.timeout_ms,
	    pop3_deadline_cb, pop3_resume_cb, c)) < 0)
		goto fail;
	pop3_enter(c, POP3_S_CONNECTING);
	if ((r = net_connect(base, dns, &c->p.net, pop3_connected, c,
	    &c->conn)) < 0)
		goto fail;
	*ret = c;
	return 0;
fail:
	pop3_client_free(c);
	return r;
}

void
pop3_client_pause(struct pop3_client *c)
{
	if (c != NULL && !c->finished)
		session_core_pause(&c->core, c->bev);
}

void
pop3_client_resume(struct pop3_client *c)
{
	if (c != NULL && !c->finished &&
	    session_core_resume(&c->core, c->bev))
		c->progress = 0;
}

void
pop3_client_cancel(struct pop3_client *c)
{
	if (c == NULL || c->finished)
		return;
	snprintf(c->core.why, sizeof c->core.why, "stopped on request");
	pop3_finish(c, SESSION_FAIL_CANCELLED);
}

void
pop3_client_free(struct pop3_client *c)
{
	if (c == NULL)
		return;
	pop3_teardown(c);
	session_core_clear(&c->core);
	pop3_walk_reset(c);
	free(c->host);
	free(c->ca_file);
	free(c->server_name);
	free(c->user);
	free(c->authzid);
	free(c);
}
