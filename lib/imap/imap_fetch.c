/*
 * imap_fetch.c - the folder walk of an IMAP session: EXAMINE (read-only,
 * so \Seen and \Recent stay as they were), UID SEARCH for what the folder
 * holds, the plan (server UIDs minus those the owner has archived), and
 * pipelined UID FETCH of BODY.PEEK[] with each body streamed into the
 * owner's sink.  UID sets stay ranges until the plan, which is bounded by
 * the folder's message count.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "base/log.h"
#include "base/util.h"
#include "imap/imap_client_private.h"

/* Literal bytes that count as progress for the deadline. */
#define IMAP_PROGRESS_BYTES	(64 * 1024)

static void imap_fetch_fill(struct imap_client *);
static void imap_folder_finish(struct imap_client *, bool complete);

void
imap_msg_drop(struct imap_client *c)
{
	if (c->msg != NULL)
		c->ops->msg_discard(c->arg, c->msg);
	c->msg = NULL;
	c->msg_active = false;
	c->msg_oversize = false;
	c->msg_ended = false;
}

void
imap_walk_reset(struct imap_client *c)
{
	imap_msg_drop(c);
	imap_uidset_clear(&c->found);
	free(c->plan);
	free(c->got);
	c->plan = NULL;
	c->got = NULL;
	c->n_plan = c->next_plan = c->resolved = 0;
	c->n_inflight = 0;
	c->folder_incomplete = false;
	c->have_uidvalidity = false;
	memset(&c->sf, 0, sizeof c->sf);
}

static void
imap_event(struct imap_client *c, enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
imap_event(struct imap_client *c, enum log_level lvl, const char *fmt, ...)
{
	char text[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	c->ops->event(c->arg, lvl, c->sf.name != NULL ? &c->sf : NULL, text);
}

static void
imap_logout(struct imap_client *c)
{
	imap_enter(c, IMAP_S_LOGOUT);
	if (imap_send(c, c->tag, "LOGOUT") < 0)
		imap_fail(c, SESSION_FAIL_LOCAL, "out of memory");
}

/* EXAMINE the next folder, or LOGOUT when none is left. */
void
imap_walk_next_folder(struct imap_client *c)
{
	struct imap_folder *f;
	struct evbuffer *out;
	char tag[16];

	for (;;) {
		imap_walk_reset(c);
		if (c->cur >= c->n_folders) {
			imap_logout(c);
			return;
		}
		f = &c->folders[c->cur++];
		c->sf.name = f->name;
		c->sf.delim = f->delim;
		if (imap_quotable(f->raw, f->raw_len) ||
		    (c->caps & IMAP_CAP_LITERALPLUS))
			break;
		imap_event(c, LOG_LVL_ERR, "folder needs a literal to be "
		    "named and the server has no LITERAL+; not archived");
		c->ops->folder_done(c->arg, &c->sf, false);
	}
	imap_enter(c, IMAP_S_EXAMINE);
	out = bufferevent_get_output(c->bev);
	snprintf(tag, sizeof tag, "a%u", ++c->tagseq);
	memcpy(c->tag, tag, sizeof tag);
	evbuffer_add_printf(out, "%s EXAMINE ", tag);
	if (imap_quotable(f->raw, f->raw_len))
		imap_quote(out, f->raw, f->raw_len);
	else {
		/* RFC 7888 non-synchronising literal: no round trip. */
		evbuffer_add_printf(out, "{%zu+}\r\n", f->raw_len);
		evbuffer_add(out, f->raw, f->raw_len);
	}
	evbuffer_add(out, "\r\n", 2);
	imap_arm_deadline(c);
}

static void
imap_examine_untagged(struct imap_client *c, const struct imap_response *r)
{
	uint32_t v;
	uint64_t v64;

	if (r->has_number && strcmp(r->keyword, "EXISTS") == 0) {
		c->sf.messages = r->number;
		return;
	}
	if (r->status != IMAP_ST_OK || r->code == NULL || r->n_code_args < 1)
		return;
	if (strcasecmp(r->code, "UIDVALIDITY") == 0 &&
	    imap_value_u32(&r->code_args[0], &v) == 0) {
		c->sf.uidvalidity = v;
		c->have_uidvalidity = true;
	} else if (strcasecmp(r->code, "UIDNEXT") == 0 &&
	    imap_value_u32(&r->code_args[0], &v) == 0) {
		c->sf.uidnext = v;
	} else if (strcasecmp(r->code, "HIGHESTMODSEQ") == 0 &&
	    imap_value_u64(&r->code_args[0], &v64) == 0) {
		c->sf.highestmodseq = v64;
	}
}

static void
imap_send_search(struct imap_client *c)
{
	imap_enter(c, IMAP_S_SEARCH);
	/* ESEARCH (RFC 4731) answers with ranges, not a number per message. */
	if (imap_send(c, c->tag, (c->caps & IMAP_CAP_ESEARCH) ?
	    "UID SEARCH RETURN (ALL) ALL" : "UID SEARCH ALL") < 0)
		imap_fail(c, SESSION_FAIL_LOCAL, "out of memory");
}

static void
imap_on_examine(struct imap_client *c, const struct imap_response *r)
{
	uint32_t *known = NULL;
	size_t n_known = 0;
	char words[512];
	int skip;

	if (r->status != IMAP_ST_OK) {
		imap_server_words(r, words, sizeof words);
		imap_event(c, LOG_LVL_ERR, "EXAMINE refused: %s", words);
		imap_folder_finish(c, false);
		return;
	}
	if (!c->have_uidvalidity || c->sf.uidvalidity == 0) {
		imap_event(c, LOG_LVL_ERR, "server sent no UIDVALIDITY; the "
		    "folder cannot be archived incrementally and was skipped");
		imap_folder_finish(c, false);
		return;
	}
	if (c->sf.messages > c->p.max_folder_messages) {
		imap_event(c, LOG_LVL_ERR, "folder holds %u messages, more "
		    "than the limit of %u; skipped", c->sf.messages,
		    c->p.max_folder_messages);
		imap_folder_finish(c, false);
		return;
	}
	skip = c->ops->folder_open(c->arg, &c->sf, &known, &n_known);
	if (skip < 0) {
		free(known);
		imap_fail(c, SESSION_FAIL_LOCAL, "reading the archive index "
		    "failed: %s", strerror(-skip));
		return;
	}
	if (skip > 0) {
		free(known);
		imap_folder_finish(c, true);
		return;
	}
	/* Keep the known list in `plan` until the search result arrives. */
	c->plan = known;
	c->n_plan = n_known;
	if (c->sf.messages == 0) {
		c->ops->folder_planned(c->arg, &c->sf, 0, 0);
		/* The owner may cancel from any callback: nothing after. */
		if (c->finished)
			return;
		imap_folder_finish(c, true);
		return;
	}
	imap_send_search(c);
}

/* "* SEARCH 1 2 3" or "* ESEARCH (TAG "a5") UID ALL 1:3,5" */
static void
imap_search_untagged(struct imap_client *c, const struct imap_response *r)
{
	size_t i;
	uint32_t uid;

	if (r->has_number && strcmp(r->keyword, "EXISTS") == 0) {
		c->sf.messages = r->number;
		return;
	}
	if (strcmp(r->keyword, "SEARCH") == 0) {
		for (i = 0; i < r->n_args; i++) {
			if (imap_value_u32(&r->args[i], &uid) < 0 || uid == 0 ||
			    imap_uidset_add(&c->found, uid, uid) < 0) {
				imap_fail(c, SESSION_FAIL_PROTOCOL, "%s sent an "
				    "invalid UID in a SEARCH response",
				    net_peer(c->conn));
				return;
			}
		}
		return;
	}
	if (strcmp(r->keyword, "ESEARCH") != 0)
		return;
	for (i = 0; i + 1 < r->n_args; i++) {
		const struct imap_value *v = &r->args[i + 1];

		if (!imap_value_is(&r->args[i], "ALL"))
			continue;
		if (v->type != IMAP_V_ATOM || imap_uidset_parse(&c->found,
		    v->str, v->len, UINT32_MAX, 1000000) < 0) {
			imap_fail(c, SESSION_FAIL_PROTOCOL, "%s sent an invalid "
			    "UID set in an ESEARCH response", net_peer(c->conn));
			return;
		}
		return;
	}
}

/*
 * plan := found - known.  The size of `found` was checked against the
 * folder's message count first, so a claim like 1:4294967295 never turns
 * into four billion loop turns or array slots.
 */
static int
imap_make_plan(struct imap_client *c, uint64_t *ret_found)
{
	uint64_t total = imap_uidset_count(&c->found);
	uint32_t *known = c->plan, *plan;
	size_t n_known = c->n_plan, k = 0, n = 0, i;

	if (total > (uint64_t)c->sf.messages + 1000 ||
	    total > c->p.max_folder_messages)
		return -EPROTO;
	plan = total ? calloc((size_t)total, sizeof *plan) : NULL;
	if (total && plan == NULL)
		return -ENOMEM;
	for (i = 0; i < c->found.n; i++) {
		uint64_t uid;

		for (uid = c->found.r[i].lo; uid <= c->found.r[i].hi; uid++) {
			while (k < n_known && known[k] < uid)
				k++;
			if (k < n_known && known[k] == uid)
				continue;
			plan[n++] = (uint32_t)uid;
		}
	}
	free(known);
	c->plan = plan;
	c->n_plan = n;
	*ret_found = total;
	return 0;
}

static void
imap_on_search(struct imap_client *c, const struct imap_response *r)
{
	uint64_t found;
	char words[512];
	int err;

	if (r->status != IMAP_ST_OK) {
		imap_server_words(r, words, sizeof words);
		imap_event(c, LOG_LVL_ERR, "UID SEARCH refused: %s", words);
		imap_folder_finish(c, false);
		return;
	}
	if ((err = imap_make_plan(c, &found)) < 0) {
		if (err == -ENOMEM)
			imap_fail(c, SESSION_FAIL_LOCAL, "out of memory");
		else
			imap_fail(c, SESSION_FAIL_PROTOCOL, "%s reported %llu "
			    "UIDs for a folder of %u messages",
			    net_peer(c->conn), (unsigned long long)
			    imap_uidset_count(&c->found), c->sf.messages);
		return;
	}
	c->ops->folder_planned(c->arg, &c->sf, found, c->n_plan);
	if (c->finished)
		return;
	if (c->n_plan == 0) {
		imap_folder_finish(c, true);
		return;
	}
	if ((c->got = calloc(c->n_plan, 1)) == NULL) {
		imap_fail(c, SESSION_FAIL_LOCAL, "out of memory");
		return;
	}
	imap_enter(c, IMAP_S_FETCH);
	imap_fetch_fill(c);
}

/* Keep up to fetch_window UID FETCH commands in flight. */
static void
imap_fetch_fill(struct imap_client *c)
{
	struct imap_uidset set;
	struct evbuffer *out = bufferevent_get_output(c->bev);

	while (c->n_inflight < c->p.fetch_window && c->next_plan < c->n_plan) {
		struct imap_fetch_cmd *cmd = &c->inflight[c->n_inflight];
		size_t i, n = c->n_plan - c->next_plan;

		if (n > c->p.fetch_batch)
			n = c->p.fetch_batch;
		imap_uidset_init(&set);
		for (i = 0; i < n; i++)
			if (imap_uidset_add(&set, c->plan[c->next_plan + i],
			    c->plan[c->next_plan + i]) < 0) {
				imap_uidset_clear(&set);
				imap_fail(c, SESSION_FAIL_LOCAL, "out of memory");
				return;
			}
		snprintf(cmd->tag, sizeof cmd->tag, "a%u", ++c->tagseq);
		evbuffer_add_printf(out, "%s UID FETCH ", cmd->tag);
		imap_uidset_format(&set, out);
		evbuffer_add_printf(out, " (UID RFC822.SIZE INTERNALDATE "
		    "BODY.PEEK[])\r\n");
		imap_uidset_clear(&set);
		cmd->first = c->next_plan;
		cmd->count = n;
		c->next_plan += n;
		c->n_inflight++;
	}
}

/* Index of `uid` in the plan, or -1. */
static ssize_t
imap_plan_index(const struct imap_client *c, uint32_t uid)
{
	size_t lo = 0, hi = c->n_plan;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->plan[mid] == uid)
			return (ssize_t)mid;
		if (c->plan[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static bool
imap_plan_inflight(const struct imap_client *c, size_t idx)
{
	size_t i;

	for (i = 0; i < c->n_inflight; i++)
		if (idx >= c->inflight[i].first &&
		    idx < c->inflight[i].first + c->inflight[i].count)
			return true;
	return false;
}

/* INTERNALDATE "17-Jul-1996 02:44:25 -0700" to unix seconds, 0 if odd. */
static int64_t
imap_parse_internaldate(const struct imap_value *v)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	char buf[40], mon[4], sign;
	int day, year, hh, mm, ss, zone;
	struct tm tm;
	const char *m;
	time_t t;

	if (v == NULL || v->type != IMAP_V_STRING || v->len >= sizeof buf)
		return 0;
	memcpy(buf, v->str, v->len);
	buf[v->len] = '\0';
	if (sscanf(buf, " %2d-%3s-%4d %2d:%2d:%2d %c%4d", &day, mon, &year,
	    &hh, &mm, &ss, &sign, &zone) != 8 || (sign != '+' && sign != '-'))
		return 0;
	mon[0] = (char)(mon[0] | 0x20);
	mon[1] = (char)(mon[1] | 0x20);
	mon[2] = (char)(mon[2] | 0x20);
	if ((m = strstr(months, mon)) == NULL || (m - months) % 3 != 0)
		return 0;
	memset(&tm, 0, sizeof tm);
	tm.tm_mday = day;
	tm.tm_mon = (int)((m - months) / 3);
	tm.tm_year = year - 1900;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	if ((t = timegm(&tm)) == (time_t)-1)
		return 0;
	zone = (zone / 100) * 3600 + (zone % 100) * 60;
	return (int64_t)t - (sign == '-' ? -zone : zone);
}

/* A body sent as a quoted string or small literal: into the sink too. */
static int
imap_msg_from_string(struct imap_client *c, const struct imap_value *body)
{
	int err;

	if ((c->msg = c->ops->msg_begin(c->arg, body->len)) == NULL)
		return -ENOMEM;
	if ((err = c->ops->msg_write(c->arg, c->msg, body->str, body->len)) < 0 ||
	    (err = c->ops->msg_end(c->arg, c->msg)) < 0)
		return err;
	c->msg_ended = true;
	return 0;
}

static void
imap_fetch_deliver(struct imap_client *c, uint32_t uid,
    const struct imap_value *body, const struct imap_value *idate)
{
	ssize_t idx = imap_plan_index(c, uid);
	void *h;
	int err;

	if (idx < 0 || c->got[idx] || !imap_plan_inflight(c, (size_t)idx)) {
		imap_event(c, LOG_LVL_WARN, "server sent UID %u, which was "
		    "not asked for; ignored", uid);
		imap_msg_drop(c);
		return;
	}
	c->got[idx] = 1;
	c->resolved++;
	imap_arm_deadline(c);
	if (c->msg_oversize) {
		char text[160];

		snprintf(text, sizeof text, "message of %llu bytes is larger "
		    "than max_message_size (%llu); not archived",
		    (unsigned long long)c->msg_size,
		    (unsigned long long)c->p.max_message_size);
		imap_msg_drop(c);
		c->folder_incomplete = true;
		c->ops->item(c->arg, &c->sf, uid, NULL, SESSION_ITEM_TOO_LARGE, text);
		return;
	}
	if (body->type == IMAP_V_STRING && c->msg == NULL &&
	    (err = imap_msg_from_string(c, body)) < 0) {
		imap_msg_drop(c);
		imap_fail(c, SESSION_FAIL_LOCAL, "writing a message to the "
		    "archive failed: %s", strerror(-err));
		return;
	}
	if (c->msg == NULL || !c->msg_ended) {
		imap_msg_drop(c);
		c->folder_incomplete = true;
		c->ops->item(c->arg, &c->sf, uid, NULL, SESSION_ITEM_FAILED,
		    "server sent no message body (BODY[] was NIL)");
		return;
	}
	/* The handle is the owner's from here, even if it cancels us inside
	 * message(): our teardown must not discard it again. */
	h = c->msg;
	c->msg = NULL;
	c->ops->message(c->arg, &c->sf, uid, NULL, h,
	    imap_parse_internaldate(idate));
	if (!c->finished)
		imap_msg_drop(c);
}

/* "* 12 FETCH (UID 40 RFC822.SIZE 1234 INTERNALDATE "..." BODY[] {1234}...)" */
static void
imap_fetch_untagged(struct imap_client *c, const struct imap_response *r)
{
	const struct imap_value *l, *body = NULL, *idate = NULL;
	uint32_t uid = 0;
	size_t i;

	if (!r->has_number || strcmp(r->keyword, "FETCH") != 0) {
		if (r->has_number && strcmp(r->keyword, "EXISTS") == 0)
			c->sf.messages = r->number;
		return;
	}
	if (r->n_args != 1 || r->args[0].type != IMAP_V_LIST) {
		imap_fail(c, SESSION_FAIL_PROTOCOL, "%s sent a malformed FETCH "
		    "response", net_peer(c->conn));
		return;
	}
	l = &r->args[0];
	for (i = 0; i + 1 < l->n_items; i += 2) {
		const struct imap_value *k = &l->items[i], *v = &l->items[i + 1];

		if (imap_value_is(k, "UID")) {
			if (imap_value_u32(v, &uid) < 0 || uid == 0) {
				imap_fail(c, SESSION_FAIL_PROTOCOL, "%s sent an "
				    "invalid UID in FETCH", net_peer(c->conn));
				return;
			}
		} else if (imap_value_is(k, "BODY[]")) {
			body = v;
		} else if (imap_value_is(k, "INTERNALDATE")) {
			idate = v;
		}
	}
	if (body == NULL) {
		/* A flag update or similar: nothing to archive. */
		imap_msg_drop(c);
		return;
	}
	if (uid == 0) {
		imap_msg_drop(c);
		imap_fail(c, SESSION_FAIL_PROTOCOL, "%s sent a message body "
		    "without its UID", net_peer(c->conn));
		return;
	}
	imap_fetch_deliver(c, uid, body, idate);
}

static struct imap_fetch_cmd *
imap_fetch_cmd_find(struct imap_client *c, const char *tag)
{
	size_t i;

	for (i = 0; i < c->n_inflight; i++)
		if (strcmp(c->inflight[i].tag, tag) == 0)
			return &c->inflight[i];
	return NULL;
}

static void
imap_on_fetch_done(struct imap_client *c, const struct imap_response *r)
{
	struct imap_fetch_cmd *cmd = imap_fetch_cmd_find(c, r->tag);
	char words[512], text[640];
	size_t i;

	if (cmd == NULL) {
		imap_fail(c, SESSION_FAIL_PROTOCOL, "%s answered a command "
		    "that was never sent", net_peer(c->conn));
		return;
	}
	imap_server_words(r, words, sizeof words);
	for (i = cmd->first; i < cmd->first + cmd->count; i++) {
		if (c->got[i])
			continue;
		c->got[i] = 1;
		c->resolved++;
		/* Not complete either way: only a fresh SEARCH can tell
		 * whether the message is really gone. */
		c->folder_incomplete = true;
		if (r->status == IMAP_ST_OK) {
			c->ops->item(c->arg, &c->sf, c->plan[i], NULL,
			    SESSION_ITEM_VANISHED, "not returned by the "
			    "server; probably expunged by another client");
		} else {
			snprintf(text, sizeof text, "UID FETCH refused: %s",
			    words);
			c->ops->item(c->arg, &c->sf, c->plan[i], NULL,
			    SESSION_ITEM_FAILED, text);
		}
	}
	*cmd = c->inflight[--c->n_inflight];
	if (c->resolved == c->n_plan && c->n_inflight == 0) {
		imap_folder_finish(c, !c->folder_incomplete);
		return;
	}
	imap_fetch_fill(c);
}

static void
imap_folder_finish(struct imap_client *c, bool complete)
{
	c->ops->folder_done(c->arg, &c->sf, complete);
	if (!c->finished)
		imap_walk_next_folder(c);
}

void
imap_walk_untagged(struct imap_client *c, const struct imap_response *r)
{
	switch (c->state) {
	case IMAP_S_EXAMINE:
		imap_examine_untagged(c, r);
		break;
	case IMAP_S_SEARCH:
		imap_search_untagged(c, r);
		break;
	case IMAP_S_FETCH:
		imap_fetch_untagged(c, r);
		break;
	default:
		break;
	}
}

void
imap_walk_tagged(struct imap_client *c, const struct imap_response *r)
{
	if (c->state == IMAP_S_FETCH) {
		imap_on_fetch_done(c, r);
		return;
	}
	if (strcmp(r->tag, c->tag) != 0) {
		imap_fail(c, SESSION_FAIL_PROTOCOL, "%s answered a command "
		    "that was never sent", net_peer(c->conn));
		return;
	}
	if (c->state == IMAP_S_EXAMINE)
		imap_on_examine(c, r);
	else
		imap_on_search(c, r);
}

/* ---- the streamed BODY[] literal ------------------------------------- */

int
imap_literal_begin(void *arg, uint64_t size, const char *section, bool in_fetch)
{
	struct imap_client *c = arg;

	if (!in_fetch || c->state != IMAP_S_FETCH ||
	    strcasecmp(section, "BODY[]") != 0)
		return 0;
	if (c->msg_active || c->msg != NULL)
		return -EPROTO;
	c->msg_active = true;
	c->msg_size = size;
	if (size > c->p.max_message_size) {
		c->msg_oversize = true;
		return 1;
	}
	if ((c->msg = c->ops->msg_begin(c->arg, size)) == NULL)
		return -EIO;
	return 1;
}

int
imap_literal_data(void *arg, const void *buf, size_t len)
{
	struct imap_client *c = arg;
	int err;

	c->progress += len;
	if (c->progress >= IMAP_PROGRESS_BYTES)
		imap_arm_deadline(c);
	if (c->msg_oversize)
		return 0;
	if ((err = c->ops->msg_write(c->arg, c->msg, buf, len)) < 0)
		return err;
	return 0;
}

int
imap_literal_end(void *arg)
{
	struct imap_client *c = arg;
	int err;

	c->msg_active = false;
	if (c->msg_oversize)
		return 0;
	if ((err = c->ops->msg_end(c->arg, c->msg)) < 0)
		return err;
	c->msg_ended = true;
	return 0;
}
