/*
 * run.c - one archiving run.  It owns the protocol row, answers the
 * session's questions from the index (which folders, which UIDs are
 * archived), gathers whole messages into commit groups and makes each group
 * durable with store_commit() before counting it, and records a folder as
 * complete only when every message it held is committed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "base/log.h"
#include "base/util.h"
#include "mime/mime.h"
#include "run/run.h"
#include "source/source.h"

struct run_pending {
	struct store_msg m;
	struct mime_fields f;
	char	*folder;
	char	*uidl;			/* POP3: the session's key is borrowed */
	uint64_t size;
};

struct run {
	struct run_params p;
	run_done_fn *done;
	void	*done_arg;
	int64_t	 id;
	struct source *src;
	struct event *ev;		/* deferred start / finish */
	struct run_result result;
	struct store_counts total, folder;
	uint64_t errors;		/* folder or item failures */
	bool	 folder_had_errors;
	bool	 cancelled, session_over;
	struct run_pending *pending;
	size_t	 n_pending;
	uint64_t pending_bytes;
};

static const struct session_ops run_session_ops;

static enum store_level
run_level(enum log_level l)
{
	return l == LOG_LVL_ERR ? STORE_ERROR : l == LOG_LVL_WARN ?
	    STORE_WARNING : STORE_INFO;
}

static void
run_event(struct run *r, enum store_level lvl, const char *folder,
    uint32_t uid, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
run_event(struct run *r, enum store_level lvl, const char *folder,
    uint32_t uid, const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	int err;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	err = store_run_event(r->p.store, r->id, lvl,
	    r->p.profile->auth.user, folder, uid, text);
	if (err < 0)
		log_debug("run %lld: could not record event: %s",
		    (long long)r->id, strerror(-err));
}

static void
run_counts_add(struct store_counts *a, const struct store_counts *b)
{
	a->found += b->found;
	a->archived += b->archived;
	a->skipped += b->skipped;
	a->failed += b->failed;
	a->bytes += b->bytes;
}

static void
run_pending_clear(struct run *r)
{
	size_t i;

	for (i = 0; i < r->n_pending; i++) {
		mime_fields_free(&r->pending[i].f);
		free(r->pending[i].folder);
		free(r->pending[i].uidl);
	}
	r->n_pending = 0;
	r->pending_bytes = 0;
}

/* Make the pending group durable and count it.  -errno on failure. */
static int
run_commit(struct run *r)
{
	struct store_msg *msgs;
	char err[512];
	size_t i, n = r->n_pending;
	int rc;

	if (n == 0)
		return 0;
	if ((msgs = calloc(n, sizeof *msgs)) == NULL) {
		rc = -ENOMEM;
		snprintf(err, sizeof err, "out of memory");
		for (i = 0; i < n; i++)
			store_blob_free(r->pending[i].m.blob);
	} else {
		for (i = 0; i < n; i++)
			msgs[i] = r->pending[i].m;
		rc = store_commit(r->p.store, msgs, n, err, sizeof err);
	}
	for (i = 0; i < n && rc == 0; i++) {
		if (msgs[i].duplicate) {
			r->folder.skipped++;
		} else {
			r->folder.archived++;
			r->folder.bytes += r->pending[i].size;
		}
	}
	if (rc < 0) {
		r->folder.failed += n;
		r->folder_had_errors = true;
		r->errors++;
		run_event(r, STORE_ERROR, r->pending[0].folder, 0,
		    "%zu messages could not be stored and will be fetched "
		    "again next run: %s", n, err);
	}
	free(msgs);
	run_pending_clear(r);
	return rc;
}

static void
run_on_ready(void *arg, const char *summary)
{
	struct run *r = arg;
	const struct conf_profile *p = r->p.profile;

	run_event(r, STORE_INFO, NULL, 0, "logged in as %s at %s:%u (%s): %s",
	    p->auth.user, p->server.host, p->server.port,
	    conf_protocol_name(p->server.protocol), summary);
	if (!p->server.tls.verify)
		run_event(r, STORE_WARNING, NULL, 0, "TLS certificate "
		    "verification is OFF for this profile (server.tls.verify: "
		    "false); the server's identity was not checked");
	if (p->server.protocol == CONF_PROTO_IMAP ||
	    p->server.protocol == CONF_PROTO_POP3)
		run_event(r, STORE_WARNING, NULL, 0, "the connection is not "
		    "encrypted (protocol %s): password and mail crossed the "
		    "network in clear", conf_protocol_name(p->server.protocol));
}

static bool
run_want_folder(void *arg, const char *name, char delim)
{
	struct run *r = arg;

	return conf_folder_selected(r->p.profile, name, delim);
}

static bool
run_folder_unchanged(struct run *r, const struct session_folder *sf)
{
	struct store_folder_state st;

	if (store_folder_state_get(r->p.store, r->p.profile->name,
	    r->p.profile->auth.user, sf->name, &st) < 0)
		return false;
	/*
	 * Same UIDVALIDITY, UIDNEXT and count: nothing was added (UIDNEXT
	 * would have grown) and nothing removed, so every message is one the
	 * last complete pass archived.
	 */
	return st.uidvalidity == sf->uidvalidity && sf->uidnext != 0 &&
	    st.uidnext == sf->uidnext && st.messages == sf->messages &&
	    (sf->highestmodseq == 0 || st.highestmodseq == sf->highestmodseq);
}

static int
run_folder_open(void *arg, const struct session_folder *sf, uint32_t **ret_known,
    size_t *ret_n)
{
	struct run *r = arg;
	const struct conf_profile *p = r->p.profile;

	memset(&r->folder, 0, sizeof r->folder);
	r->folder_had_errors = false;
	if (run_folder_unchanged(r, sf)) {
		r->folder.found = sf->messages;
		r->folder.skipped = sf->messages;
		return 1;
	}
	return store_known_uids(r->p.store, p->name, p->auth.user, sf->name,
	    sf->uidvalidity, ret_known, ret_n);
}

static int
run_keys_known(void *arg, const struct session_folder *sf,
    const char *const *keys, size_t n, bool *ret_known)
{
	struct run *r = arg;

	return store_uidls_known(r->p.store, r->p.profile->name,
	    r->p.profile->auth.user, keys, n, ret_known);
}

static void
run_folder_planned(void *arg, const struct session_folder *sf, uint64_t found,
    uint64_t todo)
{
	struct run *r = arg;

	r->folder.found = found;
	r->folder.skipped = found - todo;
}

static void *
run_msg_begin(void *arg, uint64_t size)
{
	struct run *r = arg;
	struct store_blob *b;

	if (store_blob_begin(r->p.store, &b) < 0)
		return NULL;
	return b;
}

static int
run_msg_write(void *arg, void *h, const void *buf, size_t len)
{
	return store_blob_write(h, buf, len);
}

static int
run_msg_end(void *arg, void *h)
{
	return store_blob_end(h);
}

static void
run_msg_discard(void *arg, void *h)
{
	store_blob_free(h);
}

static void
run_message(void *arg, const struct session_folder *sf, uint32_t uid,
    const char *key, void *h, int64_t internaldate)
{
	struct run *r = arg;
	const struct conf_profile *p = r->p.profile;
	struct store_blob *blob = h;
	struct run_pending *pe;
	const char *hdr;
	size_t hlen;

	pe = &r->pending[r->n_pending];
	memset(pe, 0, sizeof *pe);
	hdr = store_blob_header(blob, &hlen);
	if ((pe->folder = strdup(sf->name)) == NULL ||
	    (key != NULL && (pe->uidl = strdup(key)) == NULL) ||
	    mime_header_fields(hdr, hlen, &pe->f) < 0) {
		free(pe->folder);
		free(pe->uidl);
		store_blob_free(blob);
		r->folder.failed++;
		r->folder_had_errors = true;
		r->errors++;
		run_event(r, STORE_ERROR, sf->name, uid, "out of memory");
		return;
	}
	pe->size = store_blob_size(blob);
	pe->m = (struct store_msg){
		.blob = blob, .archive_user = p->archive_user,
		.profile = p->name, .mailbox = p->auth.user,
		.folder = pe->folder, .uidvalidity = sf->uidvalidity,
		.uid = uid, .uidl = pe->uidl, .internaldate = internaldate,
		.message_id = pe->f.message_id, .date = pe->f.date,
		.from = pe->f.from, .to = pe->f.to, .subject = pe->f.subject,
		.run_id = r->id,
	};
	r->n_pending++;
	r->pending_bytes += pe->size;
	if (r->n_pending >= r->p.batch_messages ||
	    r->pending_bytes >= r->p.batch_bytes)
		run_commit(r);
}

static void
run_item(void *arg, const struct session_folder *sf, uint32_t uid,
    const char *key, enum session_item kind, const char *text)
{
	struct run *r = arg;

	if (kind == SESSION_ITEM_VANISHED) {
		if (r->folder.found > 0)
			r->folder.found--;
		run_event(r, STORE_WARNING, sf->name, uid, "%s", text);
		return;
	}
	r->folder.failed++;
	r->folder_had_errors = true;
	r->errors++;
	run_event(r, STORE_ERROR, sf->name, uid, "%s", text);
}

static void
run_session_event(void *arg, enum log_level lvl, const struct session_folder *sf,
    const char *text)
{
	struct run *r = arg;

	if (lvl == LOG_LVL_ERR) {
		r->errors++;
		r->folder_had_errors = true;
	}
	run_event(r, run_level(lvl), sf != NULL ? sf->name : NULL, 0, "%s", text);
}

static void
run_folder_done(void *arg, const struct session_folder *sf, bool complete)
{
	struct run *r = arg;
	const struct conf_profile *p = r->p.profile;
	struct store_folder_state st = {
		sf->uidvalidity, sf->uidnext, sf->messages, sf->highestmodseq,
	};

	if (run_commit(r) == 0 && complete && !r->folder_had_errors &&
	    sf->uidvalidity != 0)
		store_folder_state_set(r->p.store, p->name, p->auth.user,
		    sf->name, &st);
	store_run_folder(r->p.store, r->id, p->auth.user, sf->name, &r->folder);
	run_counts_add(&r->total, &r->folder);
	memset(&r->folder, 0, sizeof r->folder);
}

static const char *
run_status(const struct run *r, enum session_fail fail)
{
	if (fail == SESSION_FAIL_CANCELLED || r->cancelled)
		return "interrupted";
	if (fail != SESSION_OK)
		return "failed";
	return r->errors > 0 || r->total.failed > 0 ?
	    "completed_with_errors" : "succeeded";
}

/* The end of every run, whatever ended it. */
static void
run_finish(struct run *r, enum session_fail fail)
{
	int err;

	/* Messages received whole before a failure are still good. */
	run_commit(r);
	if (r->folder.found || r->folder.archived || r->folder.failed)
		run_counts_add(&r->total, &r->folder);
	r->result.run_id = r->id;
	r->result.status = run_status(r, fail);
	r->result.counts = r->total;
	err = store_run_finish(r->p.store, r->id, r->result.status, &r->total);
	if (err < 0)
		log_err("run %lld: could not record its end: %s",
		    (long long)r->id, strerror(-err));
	r->session_over = true;
	r->done(r, &r->result, r->done_arg);
}

static void
run_session_done(void *arg, enum session_fail fail, const char *why)
{
	struct run *r = arg;

	if (fail == SESSION_FAIL_CANCELLED)
		run_event(r, STORE_WARNING, NULL, 0, "run interrupted: %s; "
		    "what was not committed is fetched next run", why);
	else if (fail != SESSION_OK) {
		run_event(r, STORE_ERROR, NULL, 0, "%s error: %s",
		    session_fail_name(fail), why);
		snprintf(r->result.reason, sizeof r->result.reason,
		    "%s error: %s", session_fail_name(fail), why);
	}
	run_finish(r, fail);
}

static const struct session_ops run_session_ops = {
	.ready = run_on_ready,
	.want_folder = run_want_folder,
	.folder_open = run_folder_open,
	.keys_known = run_keys_known,
	.folder_planned = run_folder_planned,
	.msg_begin = run_msg_begin,
	.msg_write = run_msg_write,
	.msg_end = run_msg_end,
	.msg_discard = run_msg_discard,
	.message = run_message,
	.item = run_item,
	.event = run_session_event,
	.folder_done = run_folder_done,
	.done = run_session_done,
};

/* Starting from an event keeps done() off the caller's stack. */
static void
run_start_cb(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;
	const struct conf_profile *p = r->p.profile;
	struct conf_error cerr;
	char *password = NULL;
	int err;

	if (r->cancelled) {
		run_finish(r, SESSION_FAIL_CANCELLED);
		return;
	}
	if (conf_read_password(p, &password, &cerr) < 0) {
		r->errors++;
		run_event(r, STORE_ERROR, NULL, 0, "%s", cerr.text);
		snprintf(r->result.reason, sizeof r->result.reason, "%s",
		    cerr.text);
		run_finish(r, SESSION_FAIL_LOCAL);
		return;
	}
	err = source_start(r->p.base, r->p.dns, p, p->auth.user, password,
	    &run_session_ops, r, &r->src);
	secret_free(password);
	if (err < 0) {
		run_event(r, STORE_ERROR, NULL, 0, "could not start the session: "
		    "%s", err == -ENOTSUP ? "this protocol is not supported "
		    "yet" : strerror(-err));
		run_finish(r, SESSION_FAIL_LOCAL);
	}
}

int
run_start(const struct run_params *rp, run_done_fn *done, void *arg,
    struct run **ret)
{
	struct timeval now = { 0, 0 };
	struct run *r;
	int err;

	if ((r = calloc(1, sizeof *r)) == NULL)
		return -ENOMEM;
	r->p = *rp;
	if (r->p.batch_messages == 0)
		r->p.batch_messages = 256;
	if (r->p.batch_bytes == 0)
		r->p.batch_bytes = 64ULL << 20;
	r->done = done;
	r->done_arg = arg;
	r->pending = calloc(r->p.batch_messages, sizeof *r->pending);
	r->ev = evtimer_new(rp->base, run_start_cb, r);
	if (r->pending == NULL || r->ev == NULL) {
		run_free(r);
		return -ENOMEM;
	}
	if ((err = store_run_begin(rp->store, rp->profile->name, rp->trigger,
	    &r->id)) < 0) {
		run_free(r);
		return err;
	}
	evtimer_add(r->ev, &now);
	*ret = r;
	return 0;
}

void
run_cancel(struct run *r)
{
	if (r == NULL || r->session_over)
		return;
	r->cancelled = true;
	if (r->src != NULL)
		source_cancel(r->src);
}

int64_t
run_id(const struct run *r)
{
	return r->id;
}

void
run_free(struct run *r)
{
	size_t i;

	if (r == NULL)
		return;
	source_free(r->src);
	for (i = 0; i < r->n_pending; i++)
		store_blob_free(r->pending[i].m.blob);
	run_pending_clear(r);
	free(r->pending);
	if (r->ev != NULL)
		event_free(r->ev);
	free(r);
}
