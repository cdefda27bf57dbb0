/*
 * pop3_retr.c - the maildrop walk of a POP3 session: STAT for the count,
 * UIDL for the names, the plan (messages whose UIDL the owner has not
 * archived, and every message without a usable UIDL), LIST for sizes, then
 * RETR, pipelined when the server offers PIPELINING, each reply
 * dot-decoded straight into the owner's sink.  It never sends DELE.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "base/log.h"
#include "base/util.h"
#include "pop3/pop3_client_private.h"

/* Bytes read past max_message_size before a lying server is cut off. */
#define POP3_DRAIN_SLACK	(1ULL << 20)

/* Message bytes that count as progress for the deadline. */
#define POP3_PROGRESS_BYTES	(64 * 1024)
/* Listing lines beyond the STAT count tolerated before giving up. */
#define POP3_LISTING_SLACK	1000

static void pop3_retr_fill(struct pop3_client *);

static void
pop3_event(struct pop3_client *c, enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
pop3_event(struct pop3_client *c, enum log_level lvl, const char *fmt, ...)
{
	char text[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	c->ops->event(c->arg, lvl, c->folder_open ? &c->sf : NULL, text);
}

void
pop3_msg_drop(struct pop3_client *c)
{
	if (c->msg != NULL)
		c->ops->msg_discard(c->arg, c->msg);
	c->msg = NULL;
	c->msg_oversize = false;
	c->msg_bytes = 0;
}

void
pop3_walk_reset(struct pop3_client *c)
{
	uint32_t i;

	pop3_msg_drop(c);
	for (i = 0; i < c->n_msgs && c->msgs != NULL; i++)
		free(c->msgs[i].uidl);
	free(c->msgs);
	free(c->plan);
	c->msgs = NULL;
	c->plan = NULL;
	c->n_msgs = 0;
	c->n_plan = c->next_send = c->n_inflight = 0;
}

void
pop3_walk_start(struct pop3_client *c)
{
	pop3_enter(c, POP3_S_STAT);
	if (pop3_send(c, "STAT") < 0)
		pop3_fail(c, SESSION_FAIL_LOCAL, "out of memory");
}

static void
pop3_folder_finish(struct pop3_client *c, bool complete)
{
	c->ops->folder_done(c->arg, &c->sf, complete);
	if (!c->finished)
		pop3_quit(c);
}

static void
pop3_send_listing(struct pop3_client *c, enum pop3_state s, const char *cmd)
{
	uint32_t i;

	for (i = 0; i < c->n_msgs; i++)
		c->msgs[i].seen = false;
	c->listing_lines = c->bad_lines = 0;
	pop3_enter(c, s);
	if (pop3_send(c, "%s", cmd) < 0)
		pop3_fail(c, SESSION_FAIL_LOCAL, "out of memory");
}

static void
pop3_on_stat(struct pop3_client *c, const struct pop3_status *st)
{
	uint32_t *known = NULL, count;
	size_t n_known = 0;
	uint64_t size;
	char words[512];
	int skip;

	pop3_server_words(st, words, sizeof words);
	if (st->kind != POP3_OK || pop3_stat_parse(st->text, st->text_len,
	    &count, &size) < 0) {
		pop3_fail(c, SESSION_FAIL_PROTOCOL, "%s answered STAT with "
		    "%s%s", net_peer(c->conn), st->kind == POP3_OK ?
		    "a malformed +OK: " : "-ERR: ", words);
		return;
	}
	c->sf.name = "INBOX";
	c->sf.messages = count;
	c->folder_open = true;
	if (count > c->p.max_messages) {
		pop3_event(c, LOG_LVL_ERR, "the maildrop holds %u messages, "
		    "more than the limit of %u; not archived", count,
		    c->p.max_messages);
		pop3_folder_finish(c, false);
		return;
	}
	/* POP3 has no UIDs: whatever comes back is not needed. */
	skip = c->ops->folder_open(c->arg, &c->sf, &known, &n_known);
	free(known);
	if (skip < 0) {
		pop3_fail(c, SESSION_FAIL_LOCAL, "reading the archive index "
		    "failed: %s", strerror(-skip));
		return;
	}
	if (skip > 0 || count == 0) {
		if (skip == 0)
			c->ops->folder_planned(c->arg, &c->sf, 0, 0);
		pop3_folder_finish(c, true);
		return;
	}
	if ((c->msgs = calloc(count, sizeof *c->msgs)) == NULL) {
		pop3_fail(c, SESSION_FAIL_LOCAL, "out of memory");
		return;
	}
	c->n_msgs = count;
	pop3_send_listing(c, POP3_S_UIDL, "UIDL");
}

/* One "msgno uidl" or "msgno size" line. */
void
pop3_walk_line(struct pop3_client *c, char *line, size_t len)
{
	struct pop3_msg *m;
	const char *arg;
	size_t arg_len;
	uint32_t num;

	if (++c->listing_lines > (size_t)c->n_msgs + POP3_LISTING_SLACK) {
		pop3_fail(c, SESSION_FAIL_PROTOCOL, "%s sent more %s lines "
		    "than the %u messages STAT reported", net_peer(c->conn),
		    c->state == POP3_S_UIDL ? "UIDL" : "LIST", c->n_msgs);
		return;
	}
	if (pop3_listing_parse(line, len, &num, &arg, &arg_len) < 0 ||
	    num > c->n_msgs) {
		c->bad_lines++;
		return;
	}
	m = &c->msgs[num - 1];
	if (c->state == POP3_S_LIST) {
		m->has_size = parse_u64(arg, arg_len, &m->size) == 0;
		if (!m->has_size)
			c->bad_lines++;
		return;
	}
	if (m->seen || !pop3_uidl_valid(arg, arg_len)) {
		/* Named twice or unusable: the message gets no key. */
		if (c->bad_uidls++ == 0) {
			char esc[96];

			str_escape(esc, sizeof esc, arg, arg_len);
			snprintf(c->bad_example, sizeof c->bad_example,
			    "message %u: \"%s\"", num, esc);
		}
		free(m->uidl);
		m->uidl = NULL;
		m->seen = true;
		return;
	}
	m->seen = true;
	if ((m->uidl = strndup(arg, arg_len)) == NULL)
		pop3_fail(c, SESSION_FAIL_LOCAL, "out of memory");
}

struct pop3_key {
	const char *uidl;
	uint32_t idx;
};

static int
pop3_key_cmp(const void *a, const void *b)
{
	const struct pop3_key *x = a, *y = b;
	int r = strcmp(x->uidl, y->uidl);

	return r != 0 ? r : (x->idx > y->idx) - (x->idx < y->idx);
}

/*
 * Collect the usable UIDLs, sorted.  A value several messages share names
 * none of them: which one the index means cannot be told.
 */
static int
pop3_keys_collect(struct pop3_client *c, struct pop3_key **ret, size_t *ret_n)
{
	struct pop3_key *k;
	size_t n = 0, out = 0, i, j, m;
	uint32_t idx;

	if ((k = calloc(c->n_msgs, sizeof *k)) == NULL)
		return -ENOMEM;
	for (idx = 0; idx < c->n_msgs; idx++)
		if (c->msgs[idx].uidl != NULL)
			k[n++] = (struct pop3_key){ c->msgs[idx].uidl, idx };
	qsort(k, n, sizeof *k, pop3_key_cmp);
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && strcmp(k[i].uidl, k[j].uidl) == 0; j++)
			;
		if (j - i == 1) {
			k[out++] = k[i];
			continue;
		}
		if (c->bad_uidls == 0)
			snprintf(c->bad_example, sizeof c->bad_example,
			    "\"%s\" is shared by messages %u and %u",
			    k[i].uidl, k[i].idx + 1, k[i + 1].idx + 1);
		c->bad_uidls += j - i;
		/* Later runs compare only among themselves: safe to free. */
		for (m = i; m < j; m++) {
			free(c->msgs[k[m].idx].uidl);
			c->msgs[k[m].idx].uidl = NULL;
		}
	}
	*ret = k;
	*ret_n = out;
	return 0;
}

/* Ask the owner which keys it has; *ret_known[idx] per message. */
static int
pop3_known(struct pop3_client *c, bool **ret_known)
{
	struct pop3_key *k = NULL;
	const char **keys = NULL;
	bool *kk = NULL, *known;
	size_t n = 0, i;
	int err;

	if ((known = calloc(c->n_msgs, sizeof *known)) == NULL)
		return -ENOMEM;
	if ((err = pop3_keys_collect(c, &k, &n)) < 0)
		goto out;
	if (n == 0 || c->ops->keys_known == NULL)
		goto out;
	keys = calloc(n, sizeof *keys);
	kk = calloc(n, sizeof *kk);
	if (keys == NULL || kk == NULL) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++)
		keys[i] = k[i].uidl;
	if ((err = c->ops->keys_known(c->arg, &c->sf, keys, n, kk)) < 0)
		goto out;
	for (i = 0; i < n; i++)
		known[k[i].idx] = kk[i];
out:
	free(k);
	free(keys);
	free(kk);
	if (err < 0) {
		free(known);
		return err;
	}
	*ret_known = known;
	return 0;
}

static void
pop3_report_listing(struct pop3_client *c)
{
	if (c->bad_lines > 0)
		pop3_event(c, LOG_LVL_WARN, "%zu lines of the %s listing were "
		    "malformed or named no message of the maildrop; ignored",
		    c->bad_lines, c->state == POP3_S_UIDL ? "UIDL" : "LIST");
	c->bad_lines = 0;
}

/* plan := every message whose UIDL is not archived, or has none. */
static void
pop3_plan(struct pop3_client *c)
{
	bool *known = NULL;
	uint32_t idx;
	int err;

	if ((err = pop3_known(c, &known)) < 0) {
		pop3_fail(c, SESSION_FAIL_LOCAL, "reading the archive index "
		    "failed: %s", strerror(-err));
		return;
	}
	if (c->bad_uidls > 0)
		pop3_event(c, LOG_LVL_WARN, "%zu messages have no usable UIDL "
		    "(empty, longer than %d bytes, control characters, or "
		    "shared), e.g. %s; they are retrieved every run and content "
		    "dedup decides", c->bad_uidls, POP3_MAX_UIDL,
		    c->bad_example);
	if ((c->plan = calloc(c->n_msgs, sizeof *c->plan)) == NULL) {
		free(known);
		pop3_fail(c, SESSION_FAIL_LOCAL, "out of memory");
		return;
	}
	for (idx = 0; idx < c->n_msgs; idx++)
		if (!known[idx])
			c->plan[c->n_plan++] = idx;
	free(known);
	c->ops->folder_planned(c->arg, &c->sf, c->n_msgs, c->n_plan);
	if (c->finished)
		return;
	if (c->n_plan == 0) {
		pop3_folder_finish(c, true);
		return;
	}
	/* Sizes first: an oversized message is never retrieved. */
	pop3_send_listing(c, POP3_S_LIST, "LIST");
}

static void
pop3_retr_start(struct pop3_client *c)
{
	pop3_enter(c, POP3_S_RETR);
	pop3_retr_fill(c);
}

void
pop3_walk_listing_end(struct pop3_client *c)
{
	uint32_t idx;

	pop3_report_listing(c);
	if (c->finished)
		return;
	if (c->state == POP3_S_UIDL) {
		for (idx = 0; idx < c->n_msgs; idx++) {
			if (c->msgs[idx].seen)
				continue;
			if (c->bad_uidls++ == 0)
				snprintf(c->bad_example, sizeof c->bad_example,
				    "message %u is missing from the listing",
				    idx + 1);
		}
		pop3_plan(c);
	} else {
		pop3_retr_start(c);
	}
}

static void
pop3_item(struct pop3_client *c, uint32_t idx, enum session_item kind,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
pop3_item(struct pop3_client *c, uint32_t idx, enum session_item kind,
    const char *fmt, ...)
{
	const char *uidl = c->msgs[idx].uidl;
	char text[600], full[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if (uidl != NULL)
		snprintf(full, sizeof full, "message %u (UIDL %s) %s", idx + 1,
		    uidl, text);
	else
		snprintf(full, sizeof full, "message %u %s", idx + 1, text);
	/* Like IMAP, not complete: the next run looks again. */
	c->folder_incomplete = true;
	c->ops->item(c->arg, &c->sf, 0, uidl, kind, full);
}

/* Keep `window` RETRs in flight (1 without PIPELINING, RFC 2449 6.6). */
static void
pop3_retr_fill(struct pop3_client *c)
{
	unsigned window = (c->caps & POP3_CAP_PIPELINING) ? c->p.window : 1;

	while (!c->finished && c->n_inflight < window &&
	    c->next_send < c->n_plan) {
		size_t slot = c->next_send++;
		uint32_t idx = c->plan[slot];
		const struct pop3_msg *m = &c->msgs[idx];

		if (m->has_size && m->size > c->p.max_message_size) {
			pop3_item(c, idx, SESSION_ITEM_TOO_LARGE, "of %llu "
			    "bytes is larger than max_message_size (%llu); not "
			    "archived", (unsigned long long)m->size,
			    (unsigned long long)c->p.max_message_size);
			continue;
		}
		if (pop3_send(c, "RETR %u", idx + 1) < 0) {
			pop3_fail(c, SESSION_FAIL_LOCAL, "out of memory");
			return;
		}
		c->inflight[c->n_inflight++] = slot;
	}
	if (!c->finished && c->n_inflight == 0 && c->next_send == c->n_plan)
		pop3_folder_finish(c, !c->folder_incomplete);
}

static uint32_t
pop3_inflight_pop(struct pop3_client *c)
{
	uint32_t idx = c->plan[c->inflight[0]];

	memmove(c->inflight, c->inflight + 1,
	    --c->n_inflight * sizeof *c->inflight);
	return idx;
}

/* ASCII case-insensitive substring search. */
static bool
pop3_has_word(const char *text, size_t len, const char *word)
{
	size_t wl = strlen(word), i, k;

	for (i = 0; i + wl <= len; i++) {
		for (k = 0; k < wl; k++)
			if (tolower((unsigned char)text[i + k]) != word[k])
				break;
		if (k == wl)
			return true;
	}
	return false;
}

/*
 * -ERR to RETR.  POP3 has no code for "gone"; servers say it in words
 * ("no such message", Dovecot "There's no message 5.", "deleted").
 */
static void
pop3_retr_refused(struct pop3_client *c, const struct pop3_status *st)
{
	uint32_t idx = pop3_inflight_pop(c);
	bool gone;
	char words[512];

	pop3_server_words(st, words, sizeof words);
	gone = pop3_has_word(st->text, st->text_len, "no such message") ||
	    pop3_has_word(st->text, st->text_len, "no message") ||
	    pop3_has_word(st->text, st->text_len, "deleted") ||
	    pop3_has_word(st->text, st->text_len, "expunged");
	if (gone)
		pop3_item(c, idx, SESSION_ITEM_VANISHED, "is no longer on the "
		    "server: %s", words);
	else
		pop3_item(c, idx, SESSION_ITEM_FAILED, "could not be "
		    "retrieved: RETR refused: %s", words);
	pop3_retr_fill(c);
}

static void
pop3_on_retr(struct pop3_client *c, const struct pop3_status *st)
{
	const struct pop3_msg *m;

	if (c->n_inflight == 0) {
		pop3_fail(c, SESSION_FAIL_PROTOCOL, "%s answered a RETR that "
		    "was never sent", net_peer(c->conn));
		return;
	}
	if (st->kind != POP3_OK) {
		pop3_retr_refused(c, st);
		return;
	}
	m = &c->msgs[c->plan[c->inflight[0]]];
	pop3_dot_init(&c->dot);
	c->msg_bytes = 0;
	c->msg_oversize = false;
	c->msg = c->ops->msg_begin(c->arg, m->has_size ? m->size : 0);
	if (c->msg == NULL) {
		pop3_fail(c, SESSION_FAIL_LOCAL, "the archive could not take "
		    "a new message (disk full or unwritable?)");
		return;
	}
	c->in_body = true;
}

void
pop3_walk_status(struct pop3_client *c, const struct pop3_status *st)
{
	char words[512];

	switch (c->state) {
	case POP3_S_STAT:
		pop3_on_stat(c, st);
		break;
	case POP3_S_UIDL:
	case POP3_S_LIST:
		if (st->kind == POP3_OK) {
			c->in_multi = true;
			break;
		}
		pop3_server_words(st, words, sizeof words);
		if (c->state == POP3_S_LIST) {
			/* Sizes are a hint; RETR still finds an oversize. */
			log_debug("pop3 %s: LIST refused: %s", c->host, words);
			pop3_retr_start(c);
			break;
		}
		pop3_event(c, LOG_LVL_WARN, "the server has no UIDL (it "
		    "answered: %s); every message is retrieved each run and "
		    "content dedup decides", words);
		if (!c->finished)
			pop3_plan(c);
		break;
	case POP3_S_RETR:
		pop3_on_retr(c, st);
		break;
	default:
		break;
	}
}

/* Decoded message bytes: into the sink, or counted past the cap. */
static int
pop3_body_out(void *arg, const void *buf, size_t len)
{
	struct pop3_client *c = arg;

	c->msg_bytes += len;
	/*
	 * Messages LIST reports above the cap are never retrieved, so only a
	 * server whose LIST lied gets here: drain a little, then give up
	 * rather than read whatever it sends for ever.
	 */
	if (c->msg_oversize)
		return c->msg_bytes > c->p.max_message_size + POP3_DRAIN_SLACK ?
		    -EMSGSIZE : 0;
	if (c->msg_bytes > c->p.max_message_size) {
		/* Drop what came so far and drain the rest. */
		c->ops->msg_discard(c->arg, c->msg);
		c->msg = NULL;
		c->msg_oversize = true;
		return 0;
	}
	return c->ops->msg_write(c->arg, c->msg, buf, len);
}

static void
pop3_body_end(struct pop3_client *c)
{
	uint32_t idx = pop3_inflight_pop(c);
	uint64_t bytes = c->msg_bytes;
	int err;

	c->in_body = false;
	pop3_arm_deadline(c);
	if (c->msg_oversize) {
		pop3_msg_drop(c);
		pop3_item(c, idx, SESSION_ITEM_TOO_LARGE, "of %llu bytes is "
		    "larger than max_message_size (%llu); not archived",
		    (unsigned long long)bytes,
		    (unsigned long long)c->p.max_message_size);
	} else if ((err = c->ops->msg_end(c->arg, c->msg)) < 0) {
		pop3_fail(c, SESSION_FAIL_LOCAL, "writing message %u to the "
		    "archive failed: %s", idx + 1, strerror(-err));
		return;
	} else {
		void *h = c->msg;

		c->msg = NULL;
		c->ops->message(c->arg, &c->sf, 0, c->msgs[idx].uidl, h, 0);
	}
	pop3_retr_fill(c);
}

/* The first contiguous run of `in`, without copying when possible. */
static const void *
pop3_chunk(struct evbuffer *in, size_t *len)
{
	struct evbuffer_iovec v;
	size_t have = evbuffer_get_length(in);

	if (have == 0)
		return NULL;
	if (evbuffer_peek(in, -1, NULL, &v, 1) >= 1 && v.iov_len > 0) {
		*len = v.iov_len;
		return v.iov_base;
	}
	*len = have < POP3_PROGRESS_BYTES ? have : POP3_PROGRESS_BYTES;
	return evbuffer_pullup(in, (ev_ssize_t)*len);
}

int
pop3_body_feed(struct pop3_client *c, struct evbuffer *in)
{
	const void *p;
	size_t len, used;
	int r;

	while ((p = pop3_chunk(in, &len)) != NULL) {
		r = pop3_dot_feed(&c->dot, p, len, &used, pop3_body_out, c);
		if (c->finished)
			return -1;
		if (r == -EMSGSIZE) {
			pop3_fail(c, SESSION_FAIL_PROTOCOL, "message %u grew "
			    "past max_message_size (%llu bytes) although LIST "
			    "said it was smaller, and the server kept sending; "
			    "the session was ended",
			    c->plan[c->inflight[0]] + 1,
			    (unsigned long long)c->p.max_message_size);
			return -1;
		}
		if (r < 0) {
			pop3_fail(c, SESSION_FAIL_LOCAL, "writing message %u to "
			    "the archive failed: %s", c->plan[c->inflight[0]] + 1,
			    strerror(-r));
			return -1;
		}
		evbuffer_drain(in, used);
		c->progress += used;
		if (c->progress >= POP3_PROGRESS_BYTES)
			pop3_arm_deadline(c);
		if (r == 1) {
			pop3_body_end(c);
			return c->finished ? -1 : 1;
		}
	}
	return 0;
}
