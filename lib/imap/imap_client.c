/*
 * imap_client.c - the IMAP session up to the folder list: connection,
 * greeting, capabilities, STARTTLS, authentication, LIST, LOGOUT, and the
 * deadline that ends a session whose server stops making progress.  The
 * folder walk (EXAMINE, SEARCH, FETCH) is in imap_fetch.c.
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

/* More folders than this is a broken or hostile server. */
#define IMAP_MAX_FOLDERS	100000
#define IMAP_MAX_FOLDER_NAME	1000

static const char *const imap_state_names[] = {
	"connecting", "greeting", "capability", "starttls", "tls handshake",
	"authentication", "capability after login", "list", "examine",
	"search", "fetch", "logout", "done",
};
_Static_assert(NELEM(imap_state_names) == _IMAP_S_MAX, "one name per state");

static void imap_readcb(struct bufferevent *, void *);
static void imap_eventcb(struct bufferevent *, short, void *);
static void imap_send_capability(struct imap_client *);

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
	if (c->deadline != NULL)
		evtimer_del(c->deadline);
	if (c->resume_ev != NULL)
		evtimer_del(c->resume_ev);
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
imap_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct imap_client *c = arg;

	c->ops->done(c->arg, c->fail, c->fail == SESSION_OK ? "" : c->why);
}

static void
imap_finish(struct imap_client *c, enum session_fail fail)
{
	struct timeval now = { 0, 0 };

	if (c->finished)
		return;
	c->finished = true;
	c->fail = fail;
	imap_enter(c, IMAP_S_DONE);
	imap_teardown(c);
	evtimer_add(c->done_ev, &now);
}

void
imap_fail(struct imap_client *c, enum session_fail fail, const char *fmt, ...)
{
	va_list ap;

	if (c->finished)
		return;
	va_start(ap, fmt);
	vsnprintf(c->why, sizeof c->why, fmt, ap);
	va_end(ap);
	/* A server may echo the secret into any text we keep. */
	imap_auth_redact(c, c->why);
	log_debug("imap %s: failed in %s: %s", c->host,
	    imap_state_name(c->state), c->why);
	imap_finish(c, fail);
}

/*
 * The deadline: every command must see a complete response, or 64 KiB of a
 * message, within timeout_ms of the last such progress.  An idle timeout
 * alone would let a server that trickles a byte now and then hold a
 * session forever (fetchmail CVE-2011-1947 is the classic).
 */
void
imap_arm_deadline(struct imap_client *c)
{
	struct timeval tv;

	c->progress = 0;
	tv.tv_sec = c->p.timeout_ms / 1000;
	tv.tv_usec = (c->p.timeout_ms % 1000) * 1000;
	evtimer_add(c->deadline, &tv);
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

/* Like str_escape(), and 8-bit bytes too: the result is ASCII. */
static void
imap_escape_name(char *dst, size_t size, const char *src, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, o = 0;

	for (i = 0; i < len && o + 5 < size; i++) {
		unsigned char b = (unsigned char)src[i];

		if (b == '\\') {
			dst[o++] = '\\';
			dst[o++] = '\\';
		} else if (b < 0x20 || b >= 0x7f) {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[b >> 4];
			dst[o++] = hex[b & 0xf];
		} else {
			dst[o++] = (char)b;
		}
	}
	dst[o] = '\0';
}

static int
imap_folder_cmp(const void *a, const void *b)
{
	const struct imap_folder *x = *(const struct imap_folder *const *)a;
	const struct imap_folder *y = *(const struct imap_folder *const *)b;
	int r = strcmp(x->name, y->name);

	/* Among equal names, a decoded one sorts before a raw-named one. */
	return r != 0 ? r : (int)x->raw_named - (int)y->raw_named;
}

/* Folders ordered by name; NULL when out of memory. */
static struct imap_folder **
imap_folders_sorted(struct imap_client *c)
{
	struct imap_folder **ix;
	size_t i;

	if ((ix = calloc(c->n_folders, sizeof *ix)) == NULL)
		return NULL;
	for (i = 0; i < c->n_folders; i++)
		ix[i] = &c->folders[i];
	qsort(ix, c->n_folders, sizeof *ix, imap_folder_cmp);
	return ix;
}

/* "<name> (raw 2661...)": the server's raw names are unique, so this is. */
static int
imap_folder_rename_raw(struct imap_folder *f)
{
	char text[IMAP_MAX_FOLDER_NAME * 6 + 16];
	size_t i, o;

	o = (size_t)snprintf(text, sizeof text, "%s (raw ", f->name);
	for (i = 0; i < f->raw_len && o + 4 < sizeof text; i++)
		o += (size_t)snprintf(text + o, sizeof text - o, "%02x",
		    (unsigned char)f->raw[i]);
	snprintf(text + o, sizeof text - o, ")");
	free(f->name);
	return (f->name = strdup(text)) == NULL ? -ENOMEM : 0;
}

/*
 * The index knows a folder by its name, so two folders may never share
 * one: a raw-named folder whose escaped name equals another's would take
 * over its state and be skipped as unchanged.  Pass one gives such a
 * folder its raw bytes in hex; pass two drops whatever still collides
 * (the same raw name listed twice, or a name forged to match), loudly.
 * Two sorts in all, whatever the server lists.
 */
static int
imap_folders_unique(struct imap_client *c)
{
	char text[IMAP_MAX_FOLDER_NAME * 6 + 200];
	struct imap_folder **ix;
	size_t i;
	int pass;

	if (c->n_folders < 2)
		return 0;
	for (pass = 0; pass < 2; pass++) {
		if ((ix = imap_folders_sorted(c)) == NULL)
			return -ENOMEM;
		for (i = 1; i < c->n_folders; i++) {
			struct imap_folder *f = ix[i];

			if (ix[i - 1]->dropped || f->dropped ||
			    strcmp(f->name, ix[i - 1]->name) != 0)
				continue;
			if (pass == 0 && f->raw_named) {
				if (imap_folder_rename_raw(f) < 0) {
					free(ix);
					return -ENOMEM;
				}
				continue;
			}
			f->dropped = true;
			snprintf(text, sizeof text, "two folders on the server "
			    "map to the name \"%s\"; the second is not "
			    "archived: rename it on the server", f->name);
			c->ops->event(c->arg, LOG_LVL_ERR, NULL, text);
		}
		free(ix);
	}
	return 0;
}

static int
imap_folder_add(struct imap_client *c, const char *raw, size_t len, char delim)
{
	struct imap_folder *f;
	char *name;

	if (c->n_folders == c->cap_folders) {
		size_t cap = c->cap_folders ? c->cap_folders * 2 : 16;

		f = reallocarray(c->folders, cap, sizeof *f);
		if (f == NULL)
			return -ENOMEM;
		c->folders = f;
		c->cap_folders = cap;
	}
	if (len == 5 && strncasecmp(raw, "INBOX", 5) == 0)
		raw = "INBOX";
	f = &c->folders[c->n_folders];
	memset(f, 0, sizeof *f);
	if (imap_mutf7_decode(raw, len, &name) < 0) {
		char esc[IMAP_MAX_FOLDER_NAME * 4 + 1], text[sizeof esc + 128];

		/* Keep the server's spelling, as printable ASCII. */
		imap_escape_name(esc, sizeof esc, raw, len);
		f->raw_named = true;
		snprintf(text, sizeof text, "folder name \"%s\" is not valid "
		    "modified UTF-7; it is archived under its raw name", esc);
		c->ops->event(c->arg, LOG_LVL_WARN, NULL, text);
		if ((name = strdup(esc)) == NULL)
			return -ENOMEM;
	}
	f->name = name;
	f->raw = malloc(len + 1);
	if (f->raw == NULL) {
		free(name);
		return -ENOMEM;
	}
	memcpy(f->raw, raw, len);
	f->raw[len] = '\0';
	f->raw_len = len;
	f->delim = delim;
	c->n_folders++;
	return 0;
}

static bool
imap_flags_have(const struct imap_value *flags, const char *flag)
{
	size_t i;

	for (i = 0; i < flags->n_items; i++)
		if (imap_value_is(&flags->items[i], flag))
			return true;
	return false;
}

/* "* LIST (\HasNoChildren) "/" Sent" */
static void
imap_on_list(struct imap_client *c, const struct imap_response *r)
{
	const struct imap_value *flags, *dv, *nv;
	char delim = 0, esc[128];

	if (r->n_args != 3 || r->args[0].type != IMAP_V_LIST ||
	    (r->args[2].type != IMAP_V_ATOM && r->args[2].type != IMAP_V_STRING)) {
		imap_fail(c, SESSION_FAIL_PROTOCOL, "%s sent a malformed LIST "
		    "response", net_peer(c->conn));
		return;
	}
	flags = &r->args[0];
	dv = &r->args[1];
	nv = &r->args[2];
	if (dv->type == IMAP_V_STRING && dv->len == 1)
		delim = dv->str[0];
	if (imap_flags_have(flags, "\\Noselect") ||
	    imap_flags_have(flags, "\\NonExistent"))
		return;
	if (nv->len == 0 || nv->len > IMAP_MAX_FOLDER_NAME ||
	    memchr(nv->str, '\0', nv->len) != NULL ||
	    memchr(nv->str, '\r', nv->len) != NULL ||
	    memchr(nv->str, '\n', nv->len) != NULL) {
		char text[256];

		str_escape(esc, sizeof esc, nv->str, nv->len);
		snprintf(text, sizeof text, "folder \"%s\" (%zu bytes) has a "
		    "name this client cannot select safely; skipped", esc,
		    nv->len);
		c->ops->event(c->arg, LOG_LVL_WARN, NULL, text);
		return;
	}
	if (c->n_folders >= IMAP_MAX_FOLDERS) {
		imap_fail(c, SESSION_FAIL_PROTOCOL, "%s lists more than %d "
		    "folders", net_peer(c->conn), IMAP_MAX_FOLDERS);
		return;
	}
	if (imap_folder_add(c, nv->str, nv->len, delim) < 0)
		imap_fail(c, SESSION_FAIL_LOCAL, "out of memory");
}

/* Drop folders the profile does not want, keeping the server's order. */
static void
imap_on_list_done(struct imap_client *c, const struct imap_response *r)
{
	char words[512];
	size_t i, k = 0;

	if (r->status != IMAP_ST_OK) {
		imap_server_words(r, words, sizeof words);
		imap_fail(c, SESSION_FAIL_PROTOCOL, "%s refused LIST: %s",
		    net_peer(c->conn), words);
		return;
	}
	if (imap_folders_unique(c) < 0) {
		imap_fail(c, SESSION_FAIL_LOCAL, "out of memory");
		return;
	}
	for (i = 0; i < c->n_folders; i++) {
		struct imap_folder *f = &c->folders[i];

		if (!f->dropped &&
		    c->ops->want_folder(c->arg, f->name, f->delim)) {
			c->folders[k++] = *f;
		} else {
			free(f->name);
			free(f->raw);
		}
	}
	c->n_folders = k;
	c->cur = 0;
	imap_walk_next_folder(c);
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
		imap_on_list_done(c, r);
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
		imap_on_list(c, r);
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

	while (!c->finished && !c->paused) {
		/* Not a byte more once STARTTLS is answered (see net_starttls). */
		if (c->state == IMAP_S_HANDSHAKE)
			return;
		n = imap_parser_feed(c->parser, in, &r);
		if (n == 0)
			return;
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
static const char *
imap_conn_error(struct bufferevent *bev)
{
	static char buf[256];
	unsigned long e = bufferevent_get_openssl_error(bev);
	int err = EVUTIL_SOCKET_ERROR();

	if (err != 0)
		return evutil_socket_error_to_string(err);
	if (e != 0) {
		ERR_error_string_n(e, buf, sizeof buf);
		return buf;
	}
	return "the server reset or closed the connection without a clean "
	    "TLS shutdown";
}

static void
imap_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct imap_client *c = arg;

	if (c->state == IMAP_S_LOGOUT) {
		imap_finish(c, SESSION_OK);
		return;
	}
	if (what & BEV_EVENT_EOF)
		imap_fail(c, SESSION_FAIL_CONNECT, "%s closed the connection "
		    "during %s%s%s", net_peer(c->conn), imap_state_name(c->state),
		    c->bye[0] ? "; it said: " : "", c->bye);
	else if (what & BEV_EVENT_ERROR)
		imap_fail(c, SESSION_FAIL_CONNECT, "connection to %s failed "
		    "during %s: %s", net_peer(c->conn),
		    imap_state_name(c->state), imap_conn_error(bev));
}

static void
imap_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct imap_client *c = arg;

	if (c->bev != NULL && !c->finished && !c->paused)
		imap_readcb(c->bev, c);
}

static void
imap_connected(struct net_conn *conn, int err, const char *why, void *arg)
{
	struct imap_client *c = arg;

	if (err < 0) {
		imap_fail(c, err == -EPERM || err == -EPROTO || err == -EINVAL ?
		    SESSION_FAIL_TLS : err == -ETIMEDOUT ? SESSION_FAIL_TIMEOUT :
		    err == -ENOMEM ? SESSION_FAIL_LOCAL : SESSION_FAIL_CONNECT,
		    "%s", why);
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
	c->deadline = evtimer_new(base, imap_deadline_cb, c);
	c->done_ev = evtimer_new(base, imap_done_cb, c);
	c->resume_ev = evtimer_new(base, imap_resume_cb, c);
	c->parser = imap_parser_new(&c->p.limits, &lops, c);
	if (c->deadline == NULL || c->done_ev == NULL ||
	    c->resume_ev == NULL || c->parser == NULL) {
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
	if (c == NULL || c->finished || c->paused)
		return;
	c->paused = true;
	evtimer_del(c->deadline);
	if (c->bev != NULL)
		bufferevent_disable(c->bev, EV_READ);
}

void
imap_client_resume(struct imap_client *c)
{
	struct timeval now = { 0, 0 };

	if (c == NULL || c->finished || !c->paused)
		return;
	c->paused = false;
	if (c->bev != NULL)
		bufferevent_enable(c->bev, EV_READ);
	imap_arm_deadline(c);
	/* Responses may wait in the buffer with no new bytes to come. */
	evtimer_add(c->resume_ev, &now);
}

void
imap_client_cancel(struct imap_client *c)
{
	if (c == NULL || c->finished)
		return;
	snprintf(c->why, sizeof c->why, "stopped on request");
	imap_finish(c, SESSION_FAIL_CANCELLED);
}

void
imap_client_free(struct imap_client *c)
{
	size_t i;

	if (c == NULL)
		return;
	imap_teardown(c);
	if (c->deadline != NULL)
		event_free(c->deadline);
	if (c->done_ev != NULL)
		event_free(c->done_ev);
	if (c->resume_ev != NULL)
		event_free(c->resume_ev);
	imap_parser_free(c->parser);
	imap_walk_reset(c);
	imap_uidset_clear(&c->found);
	for (i = 0; i < c->n_folders; i++) {
		free(c->folders[i].name);
		free(c->folders[i].raw);
	}
	free(c->folders);
	free(c->host);
	free(c->ca_file);
	free(c->server_name);
	free(c->user);
	free(c->authzid);
	free(c);
}
