/*
 * imap_parser_fixture.h - what the IMAP parser tests share: literal
 * callbacks that log what they saw (and fail on request), a text dump of
 * every response and value, and one parser over one input buffer.
 * Static functions: each test binary includes it once.
 */
#ifndef MAILSTOW_TEST_IMAP_PARSER_FIXTURE_H
#define MAILSTOW_TEST_IMAP_PARSER_FIXTURE_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "imap/imap_parser.h"

/* Not every includer uses every helper. */
#define IMAP_PARSER_FX_FN	static __attribute__((unused))

/* What the literal callbacks do, and what they saw. */
struct tctx {
	struct evbuffer *log;
	uint64_t stream_min;	/* begin() streams literals this big or more */
	int	 begin_ret;	/* < 0: begin() fails with it */
	int	 data_ret, end_ret;
	uint64_t begin_size;
	char	 section[300];
	bool	 in_fetch;
	int	 n_begin, n_end;
	uint64_t n_data;
};

IMAP_PARSER_FX_FN void
dump_bytes(struct evbuffer *o, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f && c != '\\')
			evbuffer_add(o, &c, 1);
		else
			evbuffer_add_printf(o, "\\x%02x", c);
	}
}

/* Recursion is fine here: parsed values are at most max_depth deep. */
IMAP_PARSER_FX_FN void
dump_value(struct evbuffer *o, const struct imap_value *v)
{
	size_t i;

	switch (v->type) {
	case IMAP_V_ATOM:
		evbuffer_add_printf(o, "A:");
		dump_bytes(o, v->str, v->len);
		break;
	case IMAP_V_STRING:
		evbuffer_add_printf(o, "S%zu:", v->len);
		dump_bytes(o, v->str, v->len);
		break;
	case IMAP_V_NIL:
		evbuffer_add_printf(o, "NIL");
		break;
	case IMAP_V_STREAMED:
		evbuffer_add_printf(o, "L%llu",
		    (unsigned long long)v->streamed_size);
		break;
	case IMAP_V_LIST:
		evbuffer_add_printf(o, "(");
		for (i = 0; i < v->n_items; i++) {
			if (i > 0)
				evbuffer_add_printf(o, " ");
			dump_value(o, &v->items[i]);
		}
		evbuffer_add_printf(o, ")");
		break;
	}
}

IMAP_PARSER_FX_FN void
dump_resp(struct evbuffer *o, const struct imap_response *r)
{
	size_t i;

	evbuffer_add_printf(o, "[type=%d tag=%s st=%d num=%s%u kw=%s",
	    r->type, r->tag ? r->tag : "-", r->status,
	    r->has_number ? "" : "-", r->number, r->keyword);
	if (r->code != NULL) {
		evbuffer_add_printf(o, " code=%s{", r->code);
		for (i = 0; i < r->n_code_args; i++) {
			evbuffer_add_printf(o, " ");
			dump_value(o, &r->code_args[i]);
		}
		evbuffer_add_printf(o, "}");
	}
	evbuffer_add_printf(o, " text=");
	dump_bytes(o, r->text, r->text_len);
	evbuffer_add_printf(o, " args=");
	for (i = 0; i < r->n_args; i++) {
		evbuffer_add_printf(o, " ");
		dump_value(o, &r->args[i]);
	}
	evbuffer_add_printf(o, "]\n");
}

IMAP_PARSER_FX_FN int
t_begin(void *arg, uint64_t size, const char *section, bool in_fetch)
{
	struct tctx *t = arg;

	t->n_begin++;
	t->begin_size = size;
	snprintf(t->section, sizeof t->section, "%s", section);
	t->in_fetch = in_fetch;
	evbuffer_add_printf(t->log, "<begin %llu '%s' %d>",
	    (unsigned long long)size, section, in_fetch);
	if (t->begin_ret < 0)
		return t->begin_ret;
	return size >= t->stream_min;
}

IMAP_PARSER_FX_FN int
t_data(void *arg, const void *buf, size_t len)
{
	struct tctx *t = arg;

	assert_true(len > 0);
	t->n_data += len;
	dump_bytes(t->log, buf, len);
	return t->data_ret;
}

IMAP_PARSER_FX_FN int
t_end(void *arg)
{
	struct tctx *t = arg;

	t->n_end++;
	evbuffer_add_printf(t->log, "<end>");
	return t->end_ret;
}

static const struct imap_literal_ops t_ops __attribute__((unused)) =
    { t_begin, t_data, t_end };

/* One parser over one input buffer. */
struct fix {
	struct imap_parser *p;
	struct evbuffer *in;
	struct tctx t;
};

IMAP_PARSER_FX_FN void
fix_init(struct fix *f, const struct imap_limits *lim, bool ops)
{
	memset(f, 0, sizeof *f);
	f->t.log = evbuffer_new();
	f->t.stream_min = UINT64_MAX;
	f->in = evbuffer_new();
	f->p = imap_parser_new(lim, ops ? &t_ops : NULL, &f->t);
	assert_non_null(f->p);
	assert_non_null(f->in);
}

IMAP_PARSER_FX_FN void
fix_done(struct fix *f)
{
	imap_parser_free(f->p);
	evbuffer_free(f->in);
	evbuffer_free(f->t.log);
}

IMAP_PARSER_FX_FN int
fix_feed(struct fix *f, const char *s, size_t len,
    const struct imap_response **r)
{
	evbuffer_add(f->in, s, len);
	return imap_parser_feed(f->p, f->in, r);
}

#define FEED(f, lit, r) fix_feed((f), (lit), sizeof(lit) - 1, (r))

#endif
