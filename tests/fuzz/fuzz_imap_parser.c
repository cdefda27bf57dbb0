/*
 * fuzz_imap_parser.c - feeds arbitrary server bytes to the IMAP response
 * parser in chunks sized by the first input byte, and checks what must hold
 * whatever a server sends: streamed literals get exactly their announced
 * bytes, values are well formed, errors stick, and the responses are the
 * same as when the whole input arrives at once.
 *
 * First byte: bits 0-5 chunk size - 1, bit 6 stream every literal (else
 * only those of 16 bytes or more), bit 7 tiny limits (else the defaults).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "imap/imap_parser.h"

#define FUZZ_MAX_STREAMS 4096

struct fuzz_ctx {
	bool	 stream_all;
	bool	 open;
	uint64_t want, got;
	unsigned sum;
	size_t	 nsizes;		/* streams ended in this response */
	uint64_t sizes[FUZZ_MAX_STREAMS];
	const struct imap_limits *lim;
};

static int
fz_begin(void *arg, uint64_t size, const char *section, bool in_fetch)
{
	struct fuzz_ctx *f = arg;

	if (f->open || size > f->lim->max_literal ||
	    strlen(section) > 255)
		abort();
	(void)in_fetch;
	if (!f->stream_all && size < 16)
		return 0;
	f->open = true;
	f->want = size;
	f->got = 0;
	return 1;
}

static int
fz_data(void *arg, const void *buf, size_t len)
{
	struct fuzz_ctx *f = arg;
	const unsigned char *b = buf;
	size_t i;

	if (!f->open || len == 0 || f->got + len > f->want)
		abort();
	for (i = 0; i < len; i++)	/* let ASan see every byte */
		f->sum += b[i];
	f->got += len;
	return 0;
}

static int
fz_end(void *arg)
{
	struct fuzz_ctx *f = arg;

	if (!f->open || f->got != f->want)
		abort();
	f->open = false;
	if (f->nsizes < FUZZ_MAX_STREAMS)
		f->sizes[f->nsizes] = f->want;
	f->nsizes++;
	return 0;
}

static const struct imap_literal_ops fz_ops = { fz_begin, fz_data, fz_end };

struct fz_walk {
	struct fuzz_ctx *f;
	size_t	 nstreamed, nvalues;
	unsigned depth;
};

/* Values are checked and written to `out`; streamed ones in order. */
static void
fz_value(struct fz_walk *w, struct evbuffer *out, const struct imap_value *v)
{
	size_t i;

	w->nvalues++;
	switch (v->type) {
	case IMAP_V_ATOM:
	case IMAP_V_STRING:
	case IMAP_V_NIL:
		if (v->str == NULL || v->str[v->len] != '\0')
			abort();
		if (v->type == IMAP_V_ATOM && v->len == 0)
			abort();
		evbuffer_add_printf(out, "%d:%zu:", v->type, v->len);
		evbuffer_add(out, v->str, v->len);
		break;
	case IMAP_V_STREAMED:
		if (w->nstreamed < FUZZ_MAX_STREAMS &&
		    w->nstreamed < w->f->nsizes &&
		    w->f->sizes[w->nstreamed] != v->streamed_size)
			abort();
		w->nstreamed++;
		evbuffer_add_printf(out, "L%llu",
		    (unsigned long long)v->streamed_size);
		break;
	case IMAP_V_LIST:
		if (++w->depth > w->f->lim->max_depth ||
		    (v->n_items > 0 && v->items == NULL))
			abort();
		evbuffer_add_printf(out, "(");
		for (i = 0; i < v->n_items; i++)
			fz_value(w, out, &v->items[i]);
		evbuffer_add_printf(out, ")");
		w->depth--;
		break;
	default:
		abort();
	}
}

static void
fz_response(struct fuzz_ctx *f, struct evbuffer *out,
    const struct imap_response *r)
{
	struct fz_walk w = { .f = f };
	size_t i;

	if ((r->type == IMAP_R_TAGGED) != (r->tag != NULL) ||
	    r->keyword == NULL || r->text == NULL ||
	    r->text[r->text_len] != '\0' ||
	    (r->code != NULL && r->status == IMAP_ST_NONE) ||
	    (r->type == IMAP_R_TAGGED && r->status == IMAP_ST_NONE))
		abort();
	evbuffer_add_printf(out, "[%d %s %d %d%u %s %s ", r->type,
	    r->tag ? r->tag : "-", r->status, r->has_number, r->number,
	    r->keyword, r->code ? r->code : "-");
	evbuffer_add(out, r->text, r->text_len);
	for (i = 0; i < r->n_code_args; i++)
		fz_value(&w, out, &r->code_args[i]);
	for (i = 0; i < r->n_args; i++)
		fz_value(&w, out, &r->args[i]);
	evbuffer_add_printf(out, "]\n");
	/* Every literal streamed in this response appears once, in order. */
	if (w.nstreamed != f->nsizes || w.nvalues > f->lim->max_items)
		abort();
	f->nsizes = 0;
}

/* Parse `d` fed `chunk` bytes at a time; the log goes to `out`. */
static void
fz_run(const uint8_t *d, size_t n, size_t chunk, bool stream_all,
    const struct imap_limits *lim, struct evbuffer *out)
{
	struct fuzz_ctx *f = calloc(1, sizeof *f);
	struct evbuffer *in = evbuffer_new();
	const struct imap_response *r;
	struct imap_parser *p;
	size_t off = 0, k;
	int rc = 0;

	if (f == NULL || in == NULL)
		abort();
	f->stream_all = stream_all;
	f->lim = lim;
	if ((p = imap_parser_new(lim, &fz_ops, f)) == NULL)
		abort();
	while (off < n && rc >= 0) {
		k = n - off < chunk ? n - off : chunk;
		evbuffer_add(in, d + off, k);
		off += k;
		while ((rc = imap_parser_feed(p, in, &r)) == 1)
			fz_response(f, out, r);
	}
	if (rc < 0) {
		/* Errors stick, and come with a message. */
		if (imap_parser_feed(p, in, &r) != rc ||
		    imap_parser_error(p)[0] == '\0')
			abort();
		evbuffer_add_printf(out, "rc=%d %s", rc, imap_parser_error(p));
	} else if (evbuffer_get_length(in) != 0)
		abort();	/* "need more" means all was taken */
	imap_parser_free(p);
	evbuffer_free(in);
	free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evbuffer *a, *b;
	struct imap_limits lim;
	size_t chunk;
	bool stream_all;

	if (size < 1)
		return 0;
	chunk = (data[0] & 0x3f) + 1;
	stream_all = data[0] & 0x40;
	imap_limits_default(&lim);
	if (data[0] & 0x80) {
		lim.max_line = 512;
		lim.max_inline_literal = 32;
		lim.max_literal = 4096;
		lim.max_depth = 4;
		lim.max_items = 64;
	}
	a = evbuffer_new();
	b = evbuffer_new();
	if (a == NULL || b == NULL)
		abort();
	fz_run(data + 1, size - 1, chunk, stream_all, &lim, a);
	fz_run(data + 1, size - 1, size, stream_all, &lim, b);
	if (evbuffer_get_length(a) != evbuffer_get_length(b) ||
	    (evbuffer_get_length(a) > 0 && memcmp(evbuffer_pullup(a, -1),
	    evbuffer_pullup(b, -1), evbuffer_get_length(a)) != 0))
		abort();
	evbuffer_free(a);
	evbuffer_free(b);
	return 0;
}
