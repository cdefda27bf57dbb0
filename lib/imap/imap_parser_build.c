/*
 * imap_parser_build.c - turns the bytes of one complete IMAP response into
 * a struct imap_response: the head (tag, '*' or '+', number, keyword,
 * status), the response code, and the values (RFC 3501 section 9).  The
 * tokenizer keeps list nesting on an explicit, depth-checked stack, never
 * on the C stack, so a flood of '(' costs a counter and an error.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/util.h"
#include "imap_parser_private.h"

static const struct {
	const char	*name;
	enum imap_status st;
} imap_status_words[] = {
	{ "OK", IMAP_ST_OK }, { "NO", IMAP_ST_NO }, { "BAD", IMAP_ST_BAD },
	{ "BYE", IMAP_ST_BYE }, { "PREAUTH", IMAP_ST_PREAUTH },
};

/*
 * Response codes whose arguments are IMAP values (RFC 3501 7.1, UIDPLUS
 * RFC 4315, CONDSTORE RFC 7162).  Any other code keeps whatever follows
 * it up to ']' as one raw atom: REFERRAL URLs and vendor codes carry
 * bytes that are not valid values, and that must not fail a session.
 */
static const char *const imap_value_codes[] = {
	"APPENDUID", "BADCHARSET", "CAPABILITY", "COPYUID", "HIGHESTMODSEQ",
	"MODIFIED", "PERMANENTFLAGS", "UIDNEXT", "UIDVALIDITY", "UNSEEN",
};

/* Tokenizer state over line bytes [pos, end). */
struct imap_lex {
	struct imap_parser *p;
	size_t	 pos, end;
	bool	 code;		/* inside "[CODE ...]": ']' ends it */
	size_t	 lit;		/* next entry of the literal table */
	size_t	 depth;
	size_t	 top;		/* values outside any list */
};

/* Where the response code ended and what it holds. */
struct imap_code {
	bool	 has;
	size_t	 off, len;	/* the code's name */
	size_t	 ntok, top;	/* its tokens are toks[0, ntok) */
	size_t	 text;		/* where the free text starts */
};

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static enum imap_status
head_status(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < NELEM(imap_status_words); i++)
		if (strlen(imap_status_words[i].name) == n &&
		    strncasecmp(s, imap_status_words[i].name, n) == 0)
			return imap_status_words[i].st;
	return IMAP_ST_NONE;
}

/* A keyword: atom bytes up to a space or the end of the line. */
static int
head_word(struct imap_parser *p, size_t pos, size_t n, size_t *ret_end)
{
	size_t j = pos;

	while (j < n && imap_atom_byte((unsigned char)p->line[j], true))
		j++;
	if (j == pos)
		return imap_parser_fail(p, -EPROTO, pos, "missing keyword");
	if (j < n && p->line[j] != ' ')
		return imap_parser_fail(p, -EPROTO, j,
		    "unexpected byte in keyword");
	*ret_end = j;
	return 0;
}

/* "* [number SP] keyword ..." */
static int
head_untagged(struct imap_parser *p, size_t n, struct imap_hdr *h)
{
	const char *s = p->line;
	size_t pos = 2, j;
	int r;

	if (n < 2 || s[1] != ' ')
		return imap_parser_fail(p, -EPROTO, 1, "no space after '*'");
	if (pos < n && is_digit(s[pos])) {
		for (j = pos; j < n && is_digit(s[j]); j++)
			;
		if (j == n || s[j] != ' ')
			return imap_parser_fail(p, -EPROTO, j,
			    "number not followed by a keyword");
		if (parse_u32(s + pos, j - pos, &h->number) < 0)
			return imap_parser_fail(p, -EPROTO, pos,
			    "number out of range");
		h->has_number = true;
		pos = j + 1;
	}
	if ((r = head_word(p, pos, n, &j)) < 0)
		return r;
	h->kw_off = pos;
	h->kw_len = j - pos;
	if (!h->has_number)
		h->status = head_status(s + pos, j - pos);
	h->rest = j < n ? j + 1 : n;
	return 0;
}

/* "tag SP (OK|NO|BAD) ..." (RFC 3501 response-tagged) */
static int
head_tagged(struct imap_parser *p, size_t n, struct imap_hdr *h)
{
	const char *s = p->line;
	size_t j, k;
	int r;

	for (j = 0; j < n && s[j] != ' '; j++) {
		unsigned char c = (unsigned char)s[j];

		if (!imap_atom_byte(c, false) || c == '+' || c >= 0x80)
			return imap_parser_fail(p, -EPROTO, j,
			    "invalid byte in tag");
		if (j >= IMAP_TAG_MAX)
			return imap_parser_fail(p, -EMSGSIZE, j,
			    "tag longer than %d bytes", IMAP_TAG_MAX);
	}
	if (j == n)
		return imap_parser_fail(p, -EPROTO, j, "tag without status");
	h->tag_len = j;
	if ((r = head_word(p, j + 1, n, &k)) < 0)
		return r;
	h->status = head_status(s + j + 1, k - j - 1);
	if (h->status != IMAP_ST_OK && h->status != IMAP_ST_NO &&
	    h->status != IMAP_ST_BAD)
		return imap_parser_fail(p, -EPROTO, j + 1,
		    "tagged response is not OK, NO or BAD");
	h->kw_off = j + 1;
	h->kw_len = k - j - 1;
	h->rest = k < n ? k + 1 : n;
	return 0;
}

int
imap_parser_head(struct imap_parser *p, size_t n, struct imap_hdr *ret)
{
	struct imap_hdr h;
	int r = 0;

	memset(&h, 0, sizeof h);
	if (n == 0)
		return imap_parser_fail(p, -EPROTO, 0, "empty line");
	if (p->line[0] == '+') {
		/* A bare "+" is common; RFC 3501 wants "+ text". */
		if (n > 1 && p->line[1] != ' ')
			return imap_parser_fail(p, -EPROTO, 1,
			    "no space after '+'");
		h.type = IMAP_R_CONTINUE;
		h.rest = n > 1 ? 2 : 1;
	} else if (p->line[0] == '*') {
		h.type = IMAP_R_UNTAGGED;
		r = head_untagged(p, n, &h);
	} else {
		h.type = IMAP_R_TAGGED;
		r = head_tagged(p, n, &h);
	}
	if (r < 0)
		return r;
	*ret = h;
	return 0;
}

/* Append a token; values (not ')') count against max_items. */
static int
lex_push(struct imap_lex *x, enum imap_tkind kind, size_t off, size_t len,
    size_t n)
{
	struct imap_parser *p = x->p;
	struct imap_tok *t;

	if (kind != IMAP_T_CLOSE) {
		if (p->nitems >= p->lim.max_items)
			return imap_parser_fail(p, -EMSGSIZE, off,
			    "more than %zu values in one response",
			    p->lim.max_items);
		p->nitems++;
		if (x->depth == 0)
			x->top++;
		else
			p->toks[p->stack[x->depth - 1]].n++;
	}
	if (imap_parser_grow((void **)&p->toks, &p->tokcap, p->ntok + 1,
	    sizeof *p->toks, SIZE_MAX) < 0)
		return imap_parser_fail(p, -ENOMEM, off, "out of memory");
	t = &p->toks[p->ntok++];
	t->kind = kind;
	t->off = off;
	t->len = len;
	t->n = n;
	return 0;
}

static int
lex_open(struct imap_lex *x)
{
	struct imap_parser *p = x->p;
	int r;

	if (x->depth >= p->lim.max_depth)
		return imap_parser_fail(p, -EMSGSIZE, x->pos,
		    "lists nested deeper than %u", p->lim.max_depth);
	if ((r = lex_push(x, IMAP_T_OPEN, x->pos, 0, 0)) < 0)
		return r;
	if (imap_parser_grow((void **)&p->stack, &p->stackcap, x->depth + 1,
	    sizeof *p->stack, SIZE_MAX) < 0)
		return imap_parser_fail(p, -ENOMEM, x->pos, "out of memory");
	p->stack[x->depth++] = p->ntok - 1;
	x->pos++;
	return 0;
}

static int
lex_close(struct imap_lex *x)
{
	if (x->depth == 0)
		return imap_parser_fail(x->p, -EPROTO, x->pos,
		    "')' without '('");
	x->depth--;
	x->pos++;
	return lex_push(x, IMAP_T_CLOSE, x->pos - 1, 0, 0);
}

/* Where the next literal starts: nothing may run across it. */
static size_t
lex_limit(const struct imap_lex *x)
{
	const struct imap_parser *p = x->p;

	if (x->lit < p->nlits && p->lits[x->lit].brace < x->end)
		return p->lits[x->lit].brace;
	return x->end;
}

/* RFC 3501 quoted: only \" and \\ are escapes; no line break inside. */
static int
lex_quoted(struct imap_lex *x)
{
	const char *s = x->p->line;
	size_t i, limit = lex_limit(x);

	for (i = x->pos + 1; i < limit && s[i] != '"'; i++) {
		if (s[i] != '\\')
			continue;
		if (i + 1 >= limit || (s[i + 1] != '"' && s[i + 1] != '\\'))
			return imap_parser_fail(x->p, -EPROTO, i,
			    "invalid escape in quoted string");
		i++;
	}
	if (i >= limit)
		return imap_parser_fail(x->p, -EPROTO, x->pos,
		    "unterminated quoted string");
	if (lex_push(x, IMAP_T_QUOTED, x->pos + 1, i - x->pos - 1, 0) < 0)
		return x->p->err;
	x->pos = i + 1;
	return 0;
}

static int
lex_literal(struct imap_lex *x)
{
	struct imap_parser *p = x->p;
	int r;

	if (x->lit >= p->nlits || p->lits[x->lit].brace != x->pos)
		return imap_parser_fail(p, -EPROTO, x->pos,
		    "'{' that does not start a literal");
	if ((r = lex_push(x, IMAP_T_LIT, x->pos, 0, x->lit)) < 0)
		return r;
	x->pos = p->lits[x->lit].end;
	x->lit++;
	return 0;
}

/*
 * An atom, a flag ("\Seen", "\*") or NIL.  Outside a response code a
 * '[' takes everything up to its ']' into the atom, so that
 * BODY[HEADER.FIELDS (FROM TO)]<0> stays one value.
 */
static int
lex_atom(struct imap_lex *x)
{
	const unsigned char *s = (const unsigned char *)x->p->line;
	size_t i = x->pos, limit = lex_limit(x);
	enum imap_tkind kind = IMAP_T_ATOM;
	const unsigned char *q;
	int r;

	if (s[i] == '\\')
		i++;
	while (i < x->end) {
		if (s[i] == '[' && !x->code) {
			q = memchr(s + i + 1, ']', limit - i - 1);
			if (q == NULL)
				return imap_parser_fail(x->p, -EPROTO, i,
				    "'[' without ']' in atom");
			i = (size_t)(q - s) + 1;
		} else if (imap_atom_byte(s[i], x->code))
			i++;
		else
			break;
	}
	if (i - x->pos == 3 &&
	    strncasecmp((const char *)s + x->pos, "NIL", 3) == 0)
		kind = IMAP_T_NIL;
	if ((r = lex_push(x, kind, x->pos, i - x->pos, 0)) < 0)
		return r;
	x->pos = i;
	return 0;
}

static int
lex_value(struct imap_lex *x, unsigned char c)
{
	if (c == ')')
		return lex_close(x);
	if (c == '"')
		return lex_quoted(x);
	if (c == '{')
		return lex_literal(x);
	if (c == '\\' || imap_atom_byte(c, x->code))
		return lex_atom(x);
	return imap_parser_fail(x->p, -EPROTO, x->pos,
	    "unexpected byte 0x%02x", c);
}

/*
 * Tokenize [pos, end).  Values are separated by spaces (runs of them are
 * tolerated, as is a trailing one: servers send both).  In a code,
 * tokenizing stops at the ']' that closes it; *ret_stop is where.
 */
static int
lex_run(struct imap_parser *p, size_t pos, size_t end, bool code,
    size_t *ret_stop, size_t *ret_top)
{
	struct imap_lex x = { .p = p, .pos = pos, .end = end, .code = code };
	const unsigned char *s = (const unsigned char *)p->line;
	int r;

	for (;;) {
		while (x.pos < x.end && s[x.pos] == ' ')
			x.pos++;
		if (x.pos == x.end || (code && s[x.pos] == ']' && x.depth == 0))
			break;
		if (s[x.pos] == '(') {
			if ((r = lex_open(&x)) < 0)
				return r;
			continue;
		}
		if ((r = lex_value(&x, s[x.pos])) < 0)
			return r;
		if (x.pos < x.end && s[x.pos] != ' ' && s[x.pos] != ')' &&
		    !(code && s[x.pos] == ']'))
			return imap_parser_fail(p, -EPROTO, x.pos,
			    "no space between values");
	}
	if (x.depth > 0)
		return imap_parser_fail(p, -EPROTO, x.pos, "unterminated list");
	if (code && x.pos == x.end)
		return imap_parser_fail(p, -EPROTO, x.pos,
		    "response code without ']'");
	if (x.lit != p->nlits)
		return imap_parser_fail(p, -EPROTO, x.pos,
		    "literal outside a value");
	*ret_stop = x.pos;
	*ret_top = x.top;
	return 0;
}

static bool
code_has_values(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < NELEM(imap_value_codes); i++)
		if (strlen(imap_value_codes[i]) == n &&
		    strncasecmp(s, imap_value_codes[i], n) == 0)
			return true;
	return false;
}

/* The arguments of a code without value syntax: one raw atom, if any. */
static int
code_raw(struct imap_parser *p, size_t pos, struct imap_code *c,
    size_t *ret_stop)
{
	struct imap_lex x = { .p = p };
	const char *q;
	size_t stop;
	int r;

	q = memchr(p->line + pos, ']', p->llen - pos);
	if (q == NULL)
		return imap_parser_fail(p, -EPROTO, pos,
		    "response code without ']'");
	stop = (size_t)(q - p->line);
	if (stop > pos) {
		if ((r = lex_push(&x, IMAP_T_ATOM, pos, stop - pos, 0)) < 0)
			return r;
	}
	c->top = x.top;
	*ret_stop = stop;
	return 0;
}

/*
 * resp-text = ["[" resp-text-code "]" SP] text.  A '[' that is never
 * closed on the line is read as text: some servers start human text with
 * it, and that is no reason to drop the session.
 */
static int
build_code(struct imap_parser *p, struct imap_code *c)
{
	const char *s = p->line;
	size_t pos = p->hdr.rest, j, stop;
	int r;

	c->text = pos;
	if (pos >= p->llen || s[pos] != '[' ||
	    memchr(s + pos, ']', p->llen - pos) == NULL)
		return 0;
	for (j = pos + 1; imap_atom_byte((unsigned char)s[j], true); j++)
		;
	if (j == pos + 1)
		return imap_parser_fail(p, -EPROTO, j, "empty response code");
	if (s[j] != ']' && s[j] != ' ')
		return imap_parser_fail(p, -EPROTO, j,
		    "unexpected byte in response code");
	c->has = true;
	c->off = pos + 1;
	c->len = j - pos - 1;
	stop = j;
	if (s[j] == ' ') {
		if (code_has_values(s + c->off, c->len))
			r = lex_run(p, j + 1, p->llen, true, &stop, &c->top);
		else
			r = code_raw(p, j + 1, c, &stop);
		if (r < 0)
			return r;
	}
	c->ntok = p->ntok;
	pos = stop + 1;
	if (pos < p->llen && s[pos] == ' ')
		pos++;
	c->text = pos;
	return 0;
}

static const char *
build_copy(char **sp, const char *src, size_t len, bool upper)
{
	char *d = *sp;
	size_t i;

	for (i = 0; i < len; i++) {
		char ch = src[i];

		if (upper && ch >= 'a' && ch <= 'z')
			ch = (char)(ch - 'a' + 'A');
		d[i] = ch;
	}
	d[len] = '\0';
	*sp += len + 1;
	return d;
}

/* Copy a quoted string's inside without its escapes. */
static size_t
build_unquote(char **sp, const char *src, size_t len)
{
	char *d = *sp;
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		if (src[i] == '\\')
			i++;
		d[o++] = src[i];
	}
	d[o] = '\0';
	*sp += o + 1;
	return o;
}

static void
build_value(struct imap_parser *p, const struct imap_tok *t,
    struct imap_value *v, char **sp)
{
	const struct imap_lit *l;

	v->str = "";
	switch (t->kind) {
	case IMAP_T_ATOM:
	case IMAP_T_NIL:
		v->type = t->kind == IMAP_T_NIL ? IMAP_V_NIL : IMAP_V_ATOM;
		v->str = build_copy(sp, p->line + t->off, t->len, false);
		v->len = t->len;
		break;
	case IMAP_T_QUOTED:
		v->type = IMAP_V_STRING;
		v->str = *sp;
		v->len = build_unquote(sp, p->line + t->off, t->len);
		break;
	case IMAP_T_LIT:
		l = &p->lits[t->n];
		if (l->streamed) {
			v->type = IMAP_V_STREAMED;
			v->streamed_size = l->size;
		} else {
			v->type = IMAP_V_STRING;
			v->str = p->data + l->data;
			v->len = (size_t)l->size;
		}
		break;
	case IMAP_T_OPEN:
	case IMAP_T_CLOSE:
		v->type = IMAP_V_LIST;
		break;
	}
}

/*
 * Lay the tokens [t0, t1) out as values: the `top` outer values first,
 * then each list's items as one block allocated when the list is met, so
 * that items are contiguous.  Iterative: p->stack holds where the outer
 * list continues.
 */
static const struct imap_value *
build_layout(struct imap_parser *p, size_t t0, size_t t1, size_t top,
    size_t *cursor, char **sp)
{
	const struct imap_value *first = top > 0 ? p->vals + *cursor : NULL;
	size_t slot = *cursor, depth = 0, i;

	*cursor += top;
	for (i = t0; i < t1; i++) {
		const struct imap_tok *t = &p->toks[i];
		struct imap_value *v;

		if (t->kind == IMAP_T_CLOSE) {
			slot = p->stack[--depth];
			continue;
		}
		v = &p->vals[slot++];
		build_value(p, t, v, sp);
		if (t->kind == IMAP_T_OPEN) {
			v->items = t->n > 0 ? p->vals + *cursor : NULL;
			v->n_items = t->n;
			p->stack[depth++] = slot;
			slot = *cursor;
			*cursor += t->n;
		}
	}
	return first;
}

static int
build_values(struct imap_parser *p, const struct imap_code *c,
    size_t args_top)
{
	const struct imap_hdr *h = &p->hdr;
	struct imap_response *r = &p->resp;
	size_t i, need = h->tag_len + h->kw_len + c->len + 3, cursor = 0;
	char *sp;

	for (i = 0; i < p->ntok; i++)
		if (p->toks[i].kind == IMAP_T_ATOM ||
		    p->toks[i].kind == IMAP_T_NIL ||
		    p->toks[i].kind == IMAP_T_QUOTED)
			need += p->toks[i].len + 1;
	p->vals = calloc(p->nitems > 0 ? p->nitems : 1, sizeof *p->vals);
	p->strs = malloc(need);
	if (p->vals == NULL || p->strs == NULL)
		return imap_parser_fail(p, -ENOMEM, 0, "out of memory");
	sp = p->strs;
	r->code_args = build_layout(p, 0, c->ntok, c->top, &cursor, &sp);
	r->n_code_args = c->top;
	r->args = build_layout(p, c->ntok, p->ntok, args_top, &cursor, &sp);
	r->n_args = args_top;
	r->tag = h->type == IMAP_R_TAGGED ?
	    build_copy(&sp, p->line + h->tag_off, h->tag_len, false) : NULL;
	r->keyword = "";
	if (h->type == IMAP_R_UNTAGGED && h->status == IMAP_ST_NONE)
		r->keyword = build_copy(&sp, p->line + h->kw_off, h->kw_len,
		    true);
	r->code = c->has ? build_copy(&sp, p->line + c->off, c->len, true) :
	    NULL;
	return 0;
}

int
imap_parser_build(struct imap_parser *p)
{
	const struct imap_hdr *h = &p->hdr;
	struct imap_response *r = &p->resp;
	struct imap_code c;
	size_t args_top = 0, stop;
	int rc = 0;

	memset(&c, 0, sizeof c);
	p->ntok = p->nitems = 0;
	c.text = p->llen;
	if (h->type == IMAP_R_CONTINUE)
		c.text = h->rest;
	else if (h->status != IMAP_ST_NONE)
		rc = build_code(p, &c);
	else
		rc = lex_run(p, h->rest, p->llen, false, &stop, &args_top);
	if (rc < 0)
		return rc;
	if ((rc = build_values(p, &c, args_top)) < 0)
		return rc;
	r->type = h->type;
	r->status = h->status;
	r->has_number = h->has_number;
	r->number = h->number;
	/* Free text runs to the end of the line: never tokenized. */
	p->line[p->llen] = '\0';
	r->text = p->line + c.text;
	r->text_len = p->llen - c.text;
	return 0;
}
