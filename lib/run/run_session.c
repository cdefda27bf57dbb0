/*
 * run_session.c - what a run answers one mailbox session: which folders,
 * what is archived already, where message bytes go, and the groups of
 * whole messages handed to the commit worker (run_commit.c).  A folder is
 * recorded, and marked complete, only when its last group is committed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "run/run_private.h"
#include "source/source.h"

static const char *
rs_mailbox(const struct run_session *s)
{
	return s->mb->user;
}

void
run_pending_clear(struct run_session *s)
{
	size_t i;

	for (i = 0; i < s->n_pending; i++) {
		struct run_pending *pe = &s->pending[i];

		store_blob_free(pe->blob);
		mime_fields_free(&pe->f);
		free(pe->folder);
		free(pe->uidl);
		conf_strings_free(pe->users, pe->n_users);
	}
	s->n_pending = 0;
	s->pending_bytes = 0;
}

static void
rs_ready(void *arg, const char *summary)
{
	struct run_session *s = arg;
	const struct conf_profile *p = s->r->p.profile;

	if (p->auth.master_user != NULL)
		run_event(s->r, STORE_INFO, rs_mailbox(s), NULL, 0, "logged in "
		    "to %s as master user %s at %s:%u (%s): %s", rs_mailbox(s),
		    p->auth.master_user, p->server.host, p->server.port,
		    conf_protocol_name(p->server.protocol), summary);
	else
		run_event(s->r, STORE_INFO, rs_mailbox(s), NULL, 0, "logged in "
		    "as %s at %s:%u (%s): %s", rs_mailbox(s), p->server.host,
		    p->server.port, conf_protocol_name(p->server.protocol),
		    summary);
	if (!p->server.tls.verify)
		run_event(s->r, STORE_WARNING, rs_mailbox(s), NULL, 0, "TLS "
		    "certificate verification is OFF for this profile "
		    "(server.tls.verify: false); the server's identity was not "
		    "checked");
	if (p->server.protocol == CONF_PROTO_IMAP ||
	    p->server.protocol == CONF_PROTO_POP3)
		run_event(s->r, STORE_WARNING, rs_mailbox(s), NULL, 0, "the "
		    "connection is not encrypted (protocol %s): password and "
		    "mail crossed the network in clear",
		    conf_protocol_name(p->server.protocol));
}

static bool
rs_want_folder(void *arg, const char *name, char delim)
{
	struct run_session *s = arg;

	return conf_folder_selected(s->r->p.profile, name, delim);
}

static bool
rs_folder_unchanged(struct run_session *s, const struct session_folder *sf)
{
	struct store_folder_state st;

	if (sf->uidvalidity == 0 || store_folder_state_get(s->r->p.store,
	    s->r->p.profile->name, rs_mailbox(s), sf->name, &st) < 0)
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
rs_folder_open(void *arg, const struct session_folder *sf, uint32_t **known,
    size_t *n_known)
{
	struct run_session *s = arg;
	struct run_folder_rec *f;

	if ((f = calloc(1, sizeof *f)) == NULL ||
	    (f->name = strdup(sf->name)) == NULL) {
		free(f);
		return -ENOMEM;
	}
	f->next = s->recs;
	s->recs = f;
	s->frec = f;
	if (rs_folder_unchanged(s, sf)) {
		f->c.found = sf->messages;
		f->c.skipped = sf->messages;
		return 1;
	}
	if (sf->uidvalidity == 0)
		return 0;
	return store_known_uids(s->r->p.store, s->r->p.profile->name,
	    rs_mailbox(s), sf->name, sf->uidvalidity, known, n_known);
}

static int
rs_keys_known(void *arg, const struct session_folder *sf,
    const char *const *keys, size_t n, bool *ret_known)
{
	struct run_session *s = arg;

	return store_uidls_known(s->r->p.store, s->r->p.profile->name,
	    rs_mailbox(s), keys, n, ret_known);
}

static void
rs_folder_planned(void *arg, const struct session_folder *sf, uint64_t found,
    uint64_t todo)
{
	struct run_session *s = arg;

	s->frec->c.found = found;
	s->frec->c.skipped = found - todo;
}

static void *
rs_msg_begin(void *arg, uint64_t size)
{
	struct run_session *s = arg;
	struct store_blob *b;

	if (store_blob_begin(s->r->p.store, &b) < 0)
		return NULL;
	return b;
}

/* On the loop, from the store: its writer has caught up. */
static void
rs_write_drained(void *arg)
{
	struct run_session *s = arg;

	log_debug("%s: the archive's disk caught up; reading again",
	    rs_mailbox(s));
	s->write_wait = false;
	run_session_flow(s);
}

static int
rs_msg_write(void *arg, void *h, const void *buf, size_t len)
{
	struct run_session *s = arg;
	int r;

	if ((r = store_blob_write(h, buf, len)) < 0)
		return r;
	/* The bytes are copied: stop reading while the disk is behind. */
	if (!s->write_wait) {
		s->wwait.cb = rs_write_drained;
		s->wwait.arg = s;
		if (store_writer_wait(s->r->p.store, &s->wwait)) {
			log_debug("%s: the archive's disk is behind; reading "
			    "paused until the queued bytes are written",
			    rs_mailbox(s));
			s->write_wait = true;
			run_session_flow(s);
		}
	}
	return 0;
}

static int
rs_msg_end(void *arg, void *h)
{
	return store_blob_end(h);
}

static void
rs_msg_discard(void *arg, void *h)
{
	store_blob_free(h);
}

static int
rs_pending_grow(struct run_session *s)
{
	struct run_pending *np;
	size_t cap;

	if (s->n_pending < s->cap_pending)
		return 0;
	cap = s->cap_pending ? s->cap_pending * 2 : 64;
	if ((np = reallocarray(s->pending, cap, sizeof *np)) == NULL)
		return -ENOMEM;
	s->pending = np;
	s->cap_pending = cap;
	return 0;
}

/* Who gets this message: the mailbox's archive user, or the routes. */
static int
rs_users(struct run_session *s, const char *hdr, size_t hlen, char ***users,
    size_t *n)
{
	if (s->r->p.profile->multidrop.enabled)
		return run_route(s, hdr, hlen, users, n);
	if ((*users = calloc(1, sizeof **users)) == NULL ||
	    ((*users)[0] = strdup(s->mb->archive_user)) == NULL) {
		free(*users);
		return -ENOMEM;
	}
	*n = 1;
	return 0;
}

static int
rs_pending_add(struct run_session *s, const struct session_folder *sf,
    uint32_t uid, const char *key, struct store_blob *blob, int64_t idate)
{
	struct run_pending *pe;
	const char *hdr;
	size_t hlen;

	if (rs_pending_grow(s) < 0)
		return -ENOMEM;
	pe = &s->pending[s->n_pending];
	memset(pe, 0, sizeof *pe);
	hdr = store_blob_header(blob, &hlen);
	if ((pe->folder = strdup(sf->name)) == NULL ||
	    (key != NULL && (pe->uidl = strdup(key)) == NULL) ||
	    mime_header_fields(hdr, hlen, &pe->f) < 0 ||
	    rs_users(s, hdr, hlen, &pe->users, &pe->n_users) < 0) {
		free(pe->folder);
		free(pe->uidl);
		mime_fields_free(&pe->f);
		return -ENOMEM;
	}
	store_blob_drop_header(blob);
	pe->blob = blob;
	pe->uidvalidity = sf->uidvalidity;
	pe->uid = uid;
	pe->internaldate = idate;
	pe->size = store_blob_size(blob);
	s->n_pending++;
	s->pending_bytes += pe->size;
	return 0;
}

static void
rs_message(void *arg, const struct session_folder *sf, uint32_t uid,
    const char *key, void *h, int64_t internaldate)
{
	struct run_session *s = arg;
	struct store_blob *blob = h;

	if (rs_pending_add(s, sf, uid, key, blob, internaldate) < 0) {
		store_blob_free(blob);
		s->frec->c.failed++;
		s->frec->had_errors = true;
		s->errors++;
		run_event(s->r, STORE_ERROR, rs_mailbox(s), sf->name, uid,
		    "out of memory");
		return;
	}
	if (s->n_pending >= s->r->p.batch_messages ||
	    s->pending_bytes >= s->r->p.batch_bytes)
		run_commit(s);
}

static void
rs_item(void *arg, const struct session_folder *sf, uint32_t uid,
    const char *key, enum session_item kind, const char *text)
{
	struct run_session *s = arg;
	char where[128] = "";

	if (key != NULL)
		snprintf(where, sizeof where, "UIDL %s: ", key);
	if (kind == SESSION_ITEM_VANISHED) {
		if (s->frec->c.found > 0)
			s->frec->c.found--;
		run_event(s->r, STORE_WARNING, rs_mailbox(s), sf->name, uid,
		    "%s%s", where, text);
		return;
	}
	s->frec->c.failed++;
	s->frec->had_errors = true;
	s->errors++;
	run_event(s->r, STORE_ERROR, rs_mailbox(s), sf->name, uid, "%s%s",
	    where, text);
}

static void
rs_event(void *arg, enum log_level lvl, const struct session_folder *sf,
    const char *text)
{
	struct run_session *s = arg;

	if (lvl == LOG_LVL_ERR) {
		s->errors++;
		if (sf != NULL && s->frec != NULL)
			s->frec->had_errors = true;
	}
	run_event(s->r, lvl == LOG_LVL_ERR ? STORE_ERROR : lvl == LOG_LVL_WARN ?
	    STORE_WARNING : STORE_INFO, rs_mailbox(s),
	    sf != NULL ? sf->name : NULL, 0, "%s", text);
}

void
run_folder_finalize(struct run_session *s, struct run_folder_rec *f)
{
	const struct conf_profile *p = s->r->p.profile;
	struct run_folder_rec **pp;

	bool set = f->complete && !f->had_errors && f->st.uidvalidity != 0;

	/* After the folder's last group, in the worker's order. */
	if (!run_worker_running(s->r) || run_queue_folder(s->r,
	    rs_mailbox(s), f->name, &f->c, set ? &f->st : NULL) < 0) {
		if (set)
			store_folder_state_set(s->r->p.store, p->name,
			    rs_mailbox(s), f->name, &f->st);
		store_run_folder(s->r->p.store, s->r->id, rs_mailbox(s),
		    f->name, &f->c);
	}
	run_counts_add(&s->r->total, &f->c);
	for (pp = &s->recs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	if (s->frec == f)
		s->frec = NULL;
	free(f->name);
	free(f);
}

/* A folder some of whose messages are still at the worker waits for them. */
static void
rs_folder_done(void *arg, const struct session_folder *sf, bool complete)
{
	struct run_session *s = arg;
	struct run_folder_rec *f = s->frec;

	if (f == NULL) {
		/* Failed before it was opened: record it as it stands. */
		if ((f = calloc(1, sizeof *f)) == NULL ||
		    (f->name = strdup(sf->name)) == NULL) {
			free(f);
			return;
		}
		f->next = s->recs;
		s->recs = f;
		f->had_errors = true;
	}
	run_commit(s);
	f->st = (struct store_folder_state){ sf->uidvalidity, sf->uidnext,
	    sf->messages, sf->highestmodseq };
	f->complete = complete;
	f->done_called = true;
	s->frec = NULL;
	if (f->outstanding == 0)
		run_folder_finalize(s, f);
}

static void
rs_done(void *arg, enum session_fail fail, const char *why)
{
	if (run_oauth2_retry(arg, fail, why))
		return;
	run_session_over(arg, fail, why);
}

const struct session_ops run_session_ops = {
	.ready = rs_ready,
	.want_folder = rs_want_folder,
	.folder_open = rs_folder_open,
	.keys_known = rs_keys_known,
	.folder_planned = rs_folder_planned,
	.msg_begin = rs_msg_begin,
	.msg_write = rs_msg_write,
	.msg_end = rs_msg_end,
	.msg_discard = rs_msg_discard,
	.message = rs_message,
	.item = rs_item,
	.event = rs_event,
	.folder_done = rs_folder_done,
	.done = rs_done,
};
