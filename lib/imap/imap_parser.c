/*
 * imap_parser.c - framing of IMAP server responses: collects one response
 * from an evbuffer line by line, streams or keeps its literals, and enforces
 * every limit while the bytes arrive, so that a hostile server costs at most
 * max_line bytes.  The complete response goes to imap_parser_build.c.
 * Also the parser's lifetime, its error text and the value helpers.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "base/util.h"
#include "imap_parser_private.h"

/* Buffers above this size are freed after each response, not kept. */
#define IMAP_KEEP_BYTES	(64 * 1024)

void
imap_limits_default(struct imap_limits *l)
{
	l->max_line = 8 << 20;
	l->max_inline_literal = 64 << 10;
	l->max_literal = 256ULL << 20;
	l->max_depth = 32;
	l->max_items = 2 << 20;
}

struct imap_parser *
imap_parser_new(const struct imap_limits *lim,
    const struct imap_literal_ops *ops, void *arg)
{
	struct imap_parser *p;

	if ((p = calloc(1, sizeof *p)) == NULL)
		return NULL;
	if (lim != NULL)
		p->lim = *lim;
	else
		imap_limits_default(&p->lim);
	/* A half-filled ops struct would crash later: treat it as none. */
	if (ops != NULL && ops->begin != NULL && ops->data != NULL &&
	    ops->end != NULL) {
		p->ops = *ops;
		p->use_ops = true;
	}
	p->arg = arg;
	p->state = IMAP_P_LINE;
	return p;
}

void
imap_parser_free(struct imap_parser *p)
{
	if (p == NULL)
		return;
	free(p->line);
	free(p->lits);
	free(p->data);
	free(p->toks);
	free(p->stack);
	free(p->vals);
	free(p->strs);
	free(p);
}

const char *
imap_parser_error(const struct imap_parser *p)
{
	if (p->state != IMAP_P_FAILED)
		return "no error";
	return p->errbuf;
}

int
imap_parser_fail(struct imap_parser *p, int err, size_t off,
    const char *fmt, ...)
{
	char what[128], near[160];
	size_t lo, hi;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	/* Show up to 24 bytes either side of the offending byte. */
	if (off > p->llen)
		off = p->llen;
	lo = off > 24 ? off - 24 : 0;
	hi = p->llen - off > 24 ? off + 24 : p->llen;
	if (p->line != NULL)
		str_escape(near, sizeof near, p->line + lo, hi - lo);
	else
		near[0] = '\0';
	snprintf(p->errbuf, sizeof p->errbuf,
	    "IMAP response %llu: %s at byte %zu, near \"%s\"",
	    (unsigned long long)p->nresp + 1, what, off, near);
	p->state = IMAP_P_FAILED;
	p->err = err;
	return err;
}

int
imap_parser_grow(void **buf, size_t *cap, size_t need, size_t size,
    size_t limit)
{
	size_t ncap;
	void *n;

	if (need <= *cap)
		return 0;
	if (need > limit || need > SIZE_MAX / size)
		return -ENOMEM;
	ncap = *cap != 0 ? *cap : 64;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	if (ncap > limit)
		ncap = limit;
	if (ncap > SIZE_MAX / size)
		ncap = need;
	if ((n = realloc(*buf, ncap * size)) == NULL)
		return -ENOMEM;
	*buf = n;
	*cap = ncap;
	return 0;
}

/* Free a buffer that grew big for one response; keep small ones. */
static void
parser_trim(void **buf, size_t *cap, size_t size)
{
	if (*cap * size > IMAP_KEEP_BYTES) {
		free(*buf);
		*buf = NULL;
		*cap = 0;
	}
}

static void
parser_reset(struct imap_parser *p)
{
	parser_trim((void **)&p->line, &p->lcap, 1);
	parser_trim((void **)&p->lits, &p->litcap, sizeof *p->lits);
	parser_trim((void **)&p->data, &p->dcap, 1);
	parser_trim((void **)&p->toks, &p->tokcap, sizeof *p->toks);
	free(p->vals);
	free(p->strs);
	p->vals = NULL;
	p->strs = NULL;
	p->llen = p->lstart = p->nlits = p->dlen = p->ntok = p->nitems = 0;
	p->cr = p->classified = p->in_fetch = false;
	memset(&p->resp, 0, sizeof p->resp);
	p->state = IMAP_P_LINE;
}

/*
 * Append line bytes.  Past max_line nothing more is stored; the bytes up
 * to the limit are, so that the error is the same however the input was
 * split.
 */
static int
parser_append(struct imap_parser *p, const unsigned char *b, size_t n)
{
	size_t room = p->lim.max_line - p->llen, take = n < room ? n : room;

	/* One spare byte: the build step NUL-terminates the text. */
	if (take > 0 && imap_parser_grow((void **)&p->line, &p->lcap,
	    p->llen + take + 1, 1, p->lim.max_line < SIZE_MAX ?
	    p->lim.max_line + 1 : SIZE_MAX) < 0)
		return imap_parser_fail(p, -ENOMEM, p->llen, "out of memory");
	if (take > 0)
		memcpy(p->line + p->llen, b, take);
	p->llen += take;
	if (take < n)
		return imap_parser_fail(p, -EMSGSIZE, p->llen,
		    "response longer than %zu bytes outside literals",
		    p->lim.max_line);
	return 0;
}

/*
 * The atom just before the literal at `brace`, as a hint for begin():
 * "BODY[]" in "(UID 7 BODY[] {120}".  Brackets may hold spaces and parens
 * (BODY[HEADER.FIELDS (FROM)]).  Anything else before the literal, or a
 * token longer than IMAP_SECTION_MAX, gives "".
 */
static void
parser_section(struct imap_parser *p, size_t brace)
{
	const char *s = p->line;
	size_t end, lim, i, depth = 0;

	p->section[0] = '\0';
	if (brace < 2 || s[brace - 1] != ' ')
		return;
	end = brace - 1;
	lim = end > IMAP_SECTION_MAX ? end - IMAP_SECTION_MAX : 0;
	for (i = end; i > lim; i--) {
		unsigned char c = (unsigned char)s[i - 1];

		if (c == ']')
			depth++;
		else if (c == '[' && depth > 0)
			depth--;
		else if (depth == 0 && (c == ' ' || c == '('))
			break;
		else if (depth == 0 && !imap_atom_byte(c, false))
			return;
	}
	if ((i == lim && lim > 0) || i == end || depth != 0)
		return;
	memcpy(p->section, s + i, end - i);
	p->section[end - i] = '\0';
}

/* Decide how the literal is taken: streamed, kept, or refused. */
static int
parser_literal_begin(struct imap_parser *p, struct imap_lit *l)
{
	int r = 0;

	parser_section(p, l->brace);
	if (p->use_ops) {
		r = p->ops.begin(p->arg, l->size, p->section, p->in_fetch);
		if (r < 0)
			return imap_parser_fail(p, r, l->brace,
			    "literal of %llu bytes refused by its reader: %s",
			    (unsigned long long)l->size, strerror(-r));
	}
	l->streamed = r > 0;
	p->lit_left = l->size;
	if (l->streamed)
		return 0;
	/* Kept: each under max_inline_literal, all together under max_line. */
	if (l->size > p->lim.max_inline_literal ||
	    l->size >= p->lim.max_line - p->dlen)
		return imap_parser_fail(p, -EMSGSIZE, l->brace,
		    "literal of %llu bytes too large to keep in memory",
		    (unsigned long long)l->size);
	if (imap_parser_grow((void **)&p->data, &p->dcap,
	    p->dlen + (size_t)l->size + 1, 1, SIZE_MAX) < 0)
		return imap_parser_fail(p, -ENOMEM, l->brace, "out of memory");
	l->data = p->dlen;
	return 0;
}

/*
 * Does the line just ended announce a literal ("{123}" or LITERAL+
 * "{123+}" as its last bytes)?  1 and the literal is entered, 0 when it
 * does not, or an error.  The size is checked before anything is
 * allocated for it.
 */
static int
parser_literal_check(struct imap_parser *p)
{
	const char *s = p->line;
	size_t q, digits_end, brace;
	struct imap_lit *l;
	uint64_t size;
	int r;

	if (p->llen - p->lstart < 3 || s[p->llen - 1] != '}')
		return 0;
	q = p->llen - 1;
	if (s[q - 1] == '+')
		q--;
	digits_end = q;
	while (q > p->lstart && s[q - 1] >= '0' && s[q - 1] <= '9')
		q--;
	if (q == digits_end || q == p->lstart || s[q - 1] != '{')
		return 0;
	brace = q - 1;
	if (brace == 0 || (s[brace - 1] != ' ' && s[brace - 1] != '('))
		return imap_parser_fail(p, -EPROTO, brace,
		    "literal does not follow a space or '('");
	r = parse_u64(s + q, digits_end - q, &size);
	if (r < 0 || size > p->lim.max_literal)
		return imap_parser_fail(p, -EMSGSIZE, brace,
		    "literal larger than %llu bytes",
		    (unsigned long long)p->lim.max_literal);
	if (imap_parser_grow((void **)&p->lits, &p->litcap, p->nlits + 1,
	    sizeof *p->lits, SIZE_MAX) < 0)
		return imap_parser_fail(p, -ENOMEM, brace, "out of memory");
	l = &p->lits[p->nlits++];
	memset(l, 0, sizeof *l);
	l->brace = brace;
	l->end = p->llen;
	l->size = size;
	if ((r = parser_literal_begin(p, l)) < 0)
		return r;
	p->state = IMAP_P_LITERAL;
	return 1;
}

/* A line ended (CRLF or LF, not stored): a literal follows, or we are done. */
static int
parser_line_end(struct imap_parser *p)
{
	int r;

	if (!p->classified) {
		if ((r = imap_parser_head(p, p->llen, &p->hdr)) < 0)
			return r;
		p->classified = true;
		p->in_fetch = p->hdr.type == IMAP_R_UNTAGGED &&
		    p->hdr.has_number && p->hdr.kw_len == 5 &&
		    strncasecmp(p->line + p->hdr.kw_off, "FETCH", 5) == 0;
	}
	/* Status and continuation lines end with free text: no literals. */
	if (p->hdr.type == IMAP_R_UNTAGGED && p->hdr.status == IMAP_ST_NONE) {
		if ((r = parser_literal_check(p)) != 0)
			return r;
	}
	if ((r = imap_parser_build(p)) < 0)
		return r;
	p->state = IMAP_P_DONE;
	p->nresp++;
	return 1;
}

/* Contiguous bytes at the front of `in`, or 0 when it is empty. */
static size_t
parser_front(struct evbuffer *in, const unsigned char **ret)
{
	size_t n;

	if (evbuffer_get_length(in) == 0)
		return 0;
	n = evbuffer_get_contiguous_space(in);
	if (n == 0)
		n = 1;
	*ret = evbuffer_pullup(in, (ssize_t)n);
	return *ret == NULL ? 0 : n;
}

/*
 * Take line bytes up to a line end.  Lines end in CRLF (RFC 3501 2.2);
 * a bare LF is taken as a line end too, but a CR anywhere else and a NUL
 * are errors: no legitimate server sends them, and a CR is how a line
 * could be made to look different to us and to a log reader.
 */
static int
parser_line(struct imap_parser *p, struct evbuffer *in)
{
	const unsigned char *b;
	size_t n, i;
	int r;

	while ((n = parser_front(in, &b)) > 0) {
		for (i = 0; i < n && b[i] != '\n' && b[i] != '\r' &&
		    b[i] != '\0' && !p->cr; i++)
			;
		if ((r = parser_append(p, b, i)) < 0)
			return r;
		if (i == n) {
			evbuffer_drain(in, n);
			continue;
		}
		if (b[i] == '\n') {
			evbuffer_drain(in, i + 1);
			p->cr = false;
			return parser_line_end(p);
		}
		if (p->cr)
			return imap_parser_fail(p, -EPROTO, p->llen,
			    "CR not followed by LF");
		if (b[i] == '\0')
			return imap_parser_fail(p, -EPROTO, p->llen,
			    "NUL byte outside a literal");
		p->cr = true;
		evbuffer_drain(in, i + 1);
	}
	return 0;
}

/* Move literal bytes to the reader or to the literal buffer. */
static int
parser_literal(struct imap_parser *p, struct evbuffer *in)
{
	struct imap_lit *l = &p->lits[p->nlits - 1];
	const unsigned char *b;
	size_t n;
	int r;

	while (p->lit_left > 0) {
		if ((n = parser_front(in, &b)) == 0)
			return 0;
		if (n > p->lit_left)
			n = (size_t)p->lit_left;
		if (l->streamed) {
			r = p->ops.data(p->arg, b, n);
			if (r < 0)
				return imap_parser_fail(p, r, l->brace,
				    "storing the literal failed: %s",
				    strerror(-r));
		} else
			memcpy(p->data + p->dlen, b, n);
		if (!l->streamed)
			p->dlen += n;
		evbuffer_drain(in, n);
		p->lit_left -= n;
	}
	if (l->streamed) {
		if ((r = p->ops.end(p->arg)) < 0)
			return imap_parser_fail(p, r, l->brace,
			    "finishing the literal failed: %s", strerror(-r));
	} else
		p->data[p->dlen++] = '\0';
	p->lstart = p->llen;
	p->state = IMAP_P_LINE;
	return 1;
}

int
imap_parser_feed(struct imap_parser *p, struct evbuffer *in,
    const struct imap_response **ret)
{
	int r;

	if (p->state == IMAP_P_FAILED)
		return p->err;
	if (p->state == IMAP_P_DONE)
		parser_reset(p);
	for (;;) {
		if (p->state == IMAP_P_LITERAL)
			r = parser_literal(p, in);
		else
			r = parser_line(p, in);
		if (r <= 0)
			return r;
		if (p->state == IMAP_P_DONE) {
			*ret = &p->resp;
			return 1;
		}
	}
}

bool
imap_value_is(const struct imap_value *v, const char *s)
{
	size_t i, n = strlen(s);

	if (v->type != IMAP_V_ATOM && v->type != IMAP_V_STRING)
		return false;
	if (v->len != n)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char a = (unsigned char)v->str[i];
		unsigned char b = (unsigned char)s[i];

		if (a >= 'a' && a <= 'z')
			a -= 'a' - 'A';
		if (b >= 'a' && b <= 'z')
			b -= 'a' - 'A';
		if (a != b)
			return false;
	}
	return true;
}

int
imap_value_u32(const struct imap_value *v, uint32_t *ret)
{
	if (v->type != IMAP_V_ATOM)
		return -EINVAL;
	return parse_u32(v->str, v->len, ret) < 0 ? -EINVAL : 0;
}

int
imap_value_u64(const struct imap_value *v, uint64_t *ret)
{
	if (v->type != IMAP_V_ATOM)
		return -EINVAL;
	return parse_u64(v->str, v->len, ret) < 0 ? -EINVAL : 0;
}
