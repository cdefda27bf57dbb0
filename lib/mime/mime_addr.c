/*
 * mime_addr.c - RFC 5322 address lists (3.4, obsolete forms of 4.4) and
 * the "for" clause of Received fields (RFC 5321 4.4), read in one linear
 * pass by a lexer that drops CFWS and a small state machine per list
 * member.  Bad input is recovered from, never trusted: see mime.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime_private.h"

enum mime_tt {
	MT_END,
	MT_ATOM,	/* atext and UTF-8 */
	MT_EW,		/* an RFC 2047 encoded-word, one display-name word */
	MT_QUOTED,	/* s: between the quotes, quoted-pairs still in */
	MT_LITERAL,	/* s: between '[' and ']' */
	MT_SPECIAL,	/* c: one of < > : ; @ , . */
	MT_JUNK,	/* a byte that has no place here */
};

struct mime_tok {
	enum mime_tt	 type;
	const char	*s;
	size_t		 len;
	char		 c;
	const char	*start, *end;	/* the whole token */
};

/*
 * An unclosed '"', '(' or '[' would swallow the rest of the value; it is
 * taken as a stray byte instead, and so is every later one of its kind,
 * which keeps the lexer linear (no second scan to the end).
 */
struct mime_lex {
	const char	*p, *end;
	bool		 ew;		/* look for RFC 2047 words */
	bool		 bad_quote, bad_comment, bad_literal;
};

/* The addr-spec being read, one token at a time. */
enum mime_ab {
	AB_START, AB_LWORD, AB_LDOT, AB_DSTART, AB_DATOM, AB_DDOT, AB_DLIT,
	AB_BAD,
};

struct mime_build {
	enum mime_ab	 st;
	size_t		 llen, dlen;
	char		 local[MIME_LOCAL_MAX];
	char		 domain[MIME_DOMAIN_MAX];
};

/* Where in a list member we are: before/outside '<', inside, done. */
enum mime_im { IM_BARE, IM_ANGLE, IM_ROUTE, IM_DONE };

struct mime_item {
	enum mime_im	 mode;
	struct mime_build b;
	int		(*cb)(const struct mime_addr *, void *);
	void		*arg;
};

static bool
mime_is_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static char
mime_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

/* Bytes of atext and valid UTF-8 (RFC 6532 3.2) at p. */
static size_t
mime_atom_len(const char *p, const char *end)
{
	const unsigned char *q = (const unsigned char *)p;
	const unsigned char *e = (const unsigned char *)end;
	size_t n;

	while (q < e) {
		if (*q < 0x80) {
			if (!mime_is_atext(*q))
				break;
			q++;
		} else if ((n = mime_utf8_len(q, (size_t)(e - q))) > 0)
			q += n;
		else
			break;
	}
	return (size_t)(q - (const unsigned char *)p);
}

/* Printable ASCII but '?' from p; the end of the run. */
static const char *
mime_ew_part(const char *p, const char *lim)
{
	for (; p < lim && *p != '?'; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
			return NULL;
	return p < lim ? p : NULL;
}

/*
 * An addr-spec never holds an encoded-word (RFC 2047 5), and '@' has no
 * place in a phrase's encoded-text: "=?x?q?a@b?=", text of atoms, dots
 * and one '@' only, is an address, or it would vanish from the routing.
 * Text with any other special ("<x@evil>") stays display text, so no
 * recipient can be smuggled in through a display name.
 */
static bool
mime_ew_is_addr(const char *t, const char *end)
{
	const char *at = memchr(t, '@', (size_t)(end - t));
	const char *c;

	if (at == NULL)
		return false;
	for (c = t; c < end; c++)
		if (c != at && *c != '.' && mime_atom_len(c, c + 1) != 1)
			return false;
	return true;
}

/* An RFC 2045 token (the charset): no space, control or especial. */
static bool
mime_ew_token(const char *p, const char *end)
{
	for (; p < end; p++)
		if (strchr("()<>@,;:\\\"/[]?.=", *p) != NULL)
			return false;
	return true;
}

/*
 * "=?charset?B|Q?text?=" at p, standing alone: its length, or 0.  Syntax
 * only: the word is display-name text, and its decoded text is never
 * looked at, but mailers put specials ("Doe,_John") in it that must not
 * split the list.  The look-ahead is capped, so a hostile value stays
 * linear.
 */
static size_t
mime_ew_len(const char *p, const char *end)
{
	const char *lim = end - p > MIME_FIELD_MAX ? p + MIME_FIELD_MAX : end;
	const char *q, *t;
	char enc;

	if (lim - p < 8 || p[0] != '=' || p[1] != '?')
		return 0;
	if ((q = mime_ew_part(p + 2, lim)) == NULL || q == p + 2 ||
	    lim - q < 5 || !mime_ew_token(p + 2, q))
		return 0;
	enc = mime_lower(q[1]);
	if ((enc != 'b' && enc != 'q') || q[2] != '?')
		return 0;
	t = q + 3;
	if ((q = mime_ew_part(t, lim)) == NULL || lim - q < 2 ||
	    q[1] != '=')
		return 0;
	if (mime_ew_is_addr(t, q))
		return 0;
	/* Glued to more text it is no encoded-word (RFC 2047 5). */
	if ((q += 2) < end && mime_atom_len(q, end) > 0)
		return 0;
	return (size_t)(q - p);
}

/* A comment at lx->p; false (and no more comments) if unclosed. */
static bool
mime_lex_comment(struct mime_lex *lx)
{
	const char *q;
	size_t depth = 0;

	for (q = lx->p; q < lx->end; q++) {
		if (*q == '\\') {
			if (++q == lx->end)
				break;
		} else if (*q == '(')
			depth++;
		else if (*q == ')' && --depth == 0) {
			lx->p = q + 1;
			return true;
		}
	}
	lx->bad_comment = true;
	return false;
}

/* Skip CFWS (RFC 5322 3.2.2); folding needs no unfolding first. */
static void
mime_lex_cfws(struct mime_lex *lx)
{
	char c;

	while (lx->p < lx->end) {
		c = *lx->p;
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			lx->p++;
		else if (c != '(' || lx->bad_comment || !mime_lex_comment(lx))
			return;
	}
}

/* A quoted-string or domain-literal at lx->p ending in `close`. */
static bool
mime_lex_delim(struct mime_lex *lx, struct mime_tok *t, char close,
    enum mime_tt type)
{
	const char *q;

	for (q = lx->p + 1; q < lx->end; q++) {
		if (*q == '\\') {
			if (++q == lx->end)
				break;
		} else if (*q == close) {
			t->type = type;
			t->s = lx->p + 1;
			t->len = (size_t)(q - t->s);
			lx->p = q + 1;
			return true;
		}
	}
	return false;
}

static void
mime_lex_span(struct mime_lex *lx, struct mime_tok *t, enum mime_tt type,
    size_t n)
{
	t->type = type;
	t->s = lx->p;
	t->len = n;
	t->c = *lx->p;
	lx->p += n;
}

static void
mime_lex_next(struct mime_lex *lx, struct mime_tok *t)
{
	const char *p;
	size_t n;

	mime_lex_cfws(lx);
	p = t->start = lx->p;
	if (p == lx->end) {
		t->type = MT_END;
		t->s = t->end = p;
		t->len = 0;
		return;
	}
	if (*p == '"' && !lx->bad_quote) {
		if (mime_lex_delim(lx, t, '"', MT_QUOTED))
			goto out;
		lx->bad_quote = true;
	} else if (*p == '[' && !lx->bad_literal) {
		if (mime_lex_delim(lx, t, ']', MT_LITERAL))
			goto out;
		lx->bad_literal = true;
	}
	if (strchr("<>:;@,.", *p) != NULL && *p != '\0')
		mime_lex_span(lx, t, MT_SPECIAL, 1);
	else if (lx->ew && (n = mime_ew_len(p, lx->end)) > 0)
		mime_lex_span(lx, t, MT_EW, n);
	else if ((n = mime_atom_len(p, lx->end)) > 0)
		mime_lex_span(lx, t, MT_ATOM, n);
	else
		mime_lex_span(lx, t, MT_JUNK, 1);
out:
	t->end = lx->p;
}

static bool
mime_put(char *buf, size_t *len, size_t cap, const char *s, size_t n)
{
	size_t i;

	if (n > cap - *len)
		return false;
	for (i = 0; i < n; i++)
		buf[(*len)++] = mime_lower(s[i]);
	return true;
}

/*
 * The content of a quoted-string or literal: folding removed, quoted
 * pairs resolved, TAB as a space.  False on a control byte or invalid
 * UTF-8, which no address handed on may hold, or when it does not fit.
 * A literal drops all white space and takes dtext only (RFC 5322 3.4.1),
 * so that "[...]" reads back the same.
 */
static bool
mime_put_qtext(char *buf, size_t *len, size_t cap, const struct mime_tok *t,
    bool literal)
{
	const unsigned char *p = (const unsigned char *)t->s;
	size_t i = 0, k, n = t->len;

	while (i < n) {
		if (p[i] == '\r' || p[i] == '\n' ||
		    (literal && (p[i] == ' ' || p[i] == '\t'))) {
			i++;
			continue;
		}
		if (literal && (p[i] == '\\' || p[i] == '[' || p[i] == ']'))
			return false;
		if (p[i] == '\\' && i + 1 < n)
			i++;
		k = 1;
		if (p[i] >= 0x80 && (k = mime_utf8_len(p + i, n - i)) == 0)
			return false;
		if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
			return false;
		if (!mime_put(buf, len, cap, p[i] == '\t' ? " " :
		    (const char *)p + i, k))
			return false;
		i += k;
	}
	return true;
}

static void
mime_build_reset(struct mime_build *b)
{
	b->st = AB_START;
	b->llen = b->dlen = 0;
}

static bool
mime_local_is_dot_atom(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] == '.' ? s[i + 1] == '.' :
		    !((unsigned char)s[i] >= 0x80 || mime_is_atext(s[i])))
			return false;
	}
	return true;
}

static enum mime_ab
mime_build_word(struct mime_build *b, const struct mime_tok *t)
{
	bool local = b->st == AB_START || b->st == AB_LDOT;

	if (local && t->type == MT_QUOTED)
		return mime_put_qtext(b->local, &b->llen, sizeof b->local, t,
		    false) ? AB_LWORD : AB_BAD;
	if (local)
		return mime_put(b->local, &b->llen, sizeof b->local, t->s,
		    t->len) ? AB_LWORD : AB_BAD;
	/* An encoded-word of atext only is an atom after all; one of
	 * atoms and dots ("=?x?q?a.?=", as the canonical form joins a
	 * domain) is those atoms, so the domain reads back the same. */
	if ((b->st == AB_DSTART || b->st == AB_DDOT) && t->type != MT_QUOTED &&
	    (mime_atom_len(t->s, t->s + t->len) == t->len ||
	    (t->type == MT_EW && mime_local_is_dot_atom(t->s, t->len))))
		return mime_put(b->domain, &b->dlen, sizeof b->domain, t->s,
		    t->len) ? AB_DATOM : AB_BAD;
	return AB_BAD;
}

static enum mime_ab
mime_build_literal(struct mime_build *b, const struct mime_tok *t)
{
	if (b->st != AB_DSTART || !mime_put(b->domain, &b->dlen,
	    sizeof b->domain, "[", 1) || !mime_put_qtext(b->domain, &b->dlen,
	    sizeof b->domain, t, true) || !mime_put(b->domain, &b->dlen,
	    sizeof b->domain, "]", 1))
		return AB_BAD;
	return AB_DLIT;
}

/*
 * Dots in a local part are taken as they come (obs-local-part, and the
 * "a..b" some providers hand out): such a part is not a dot-atom and is
 * given quoted.  A domain must be atoms joined by single dots.
 */
static enum mime_ab
mime_build_special(struct mime_build *b, char c)
{
	switch (b->st) {
	case AB_START:
	case AB_LWORD:
	case AB_LDOT:
		if (c == '.')
			return mime_put(b->local, &b->llen, sizeof b->local,
			    ".", 1) ? AB_LDOT : AB_BAD;
		return c == '@' && b->st != AB_START ? AB_DSTART : AB_BAD;
	case AB_DATOM:
		if (c == '.' && mime_put(b->domain, &b->dlen, sizeof b->domain,
		    ".", 1))
			return AB_DDOT;
		return AB_BAD;
	default:
		return AB_BAD;
	}
}

static void
mime_build_tok(struct mime_build *b, const struct mime_tok *t)
{
	if (b->st == AB_BAD)
		return;
	switch (t->type) {
	case MT_ATOM:
	case MT_EW:
	case MT_QUOTED:
		b->st = mime_build_word(b, t);
		break;
	case MT_LITERAL:
		b->st = mime_build_literal(b, t);
		break;
	case MT_SPECIAL:
		b->st = mime_build_special(b, t->c);
		break;
	default:
		b->st = AB_BAD;
		break;
	}
}

static void
mime_item_reset(struct mime_item *it, enum mime_im mode)
{
	it->mode = mode;
	mime_build_reset(&it->b);
}

/* Hand on the address read so far, if it is one; then a new member. */
static int
mime_item_end(struct mime_item *it, enum mime_im next)
{
	struct mime_addr a;
	struct mime_build *b = &it->b;
	bool whole = (it->mode == IM_BARE || it->mode == IM_ANGLE) &&
	    (b->st == AB_DATOM || b->st == AB_DLIT);

	a.local = b->local;
	a.locallen = b->llen;
	a.domain = b->domain;
	a.domainlen = b->dlen;
	mime_item_reset(it, next);
	return whole ? it->cb(&a, it->arg) : 0;
}

/*
 * Inside "<...>".  A leading '@' starts an obsolete source route, which
 * ends at ':'; any other ':' also drops what came before it ("<mailto:
 * a@b>").  A ',' outside a route means the '>' is missing.
 */
static int
mime_item_angle(struct mime_item *it, const struct mime_tok *t, char c)
{
	if (it->mode == IM_ROUTE) {
		if (c == ':')
			mime_item_reset(it, IM_ANGLE);
		else if (c == '>')
			it->mode = IM_DONE;
		return 0;
	}
	if (c == '>')
		return mime_item_end(it, IM_DONE);
	if (c == ',' || c == ';')
		return mime_item_end(it, IM_BARE);
	if (c == ':')
		mime_build_reset(&it->b);
	else if (c == '@' && it->b.st == AB_START)
		it->mode = IM_ROUTE;
	else
		mime_build_tok(&it->b, t);
	return 0;
}

/*
 * One token of a list member.  Outside "<...>" the tokens are an
 * addr-spec or, once '<' comes, a display name that is thrown away; a
 * ':' there ends a group's display name (RFC 5322 3.4), a ';' its list.
 */
static int
mime_item_tok(struct mime_item *it, const struct mime_tok *t)
{
	char c = t->type == MT_SPECIAL ? t->c : '\0';

	if (t->type == MT_END)
		return mime_item_end(it, IM_BARE);
	if (it->mode == IM_ANGLE || it->mode == IM_ROUTE)
		return mime_item_angle(it, t, c);
	if (c == ',' || c == ';')
		return mime_item_end(it, IM_BARE);
	if (c == ':')
		mime_item_reset(it, IM_BARE);
	else if (it->mode == IM_DONE)
		;	/* after "<...>": a comment or junk */
	else if (c == '<')
		mime_item_reset(it, IM_ANGLE);
	else
		mime_build_tok(&it->b, t);
	return 0;
}

static void
mime_lex_init(struct mime_lex *lx, const char *v, size_t len)
{
	memset(lx, 0, sizeof *lx);
	lx->p = v;
	lx->end = v + len;
}

int
mime_addr_scan(const char *v, size_t len,
    int (*cb)(const struct mime_addr *, void *), void *arg)
{
	struct mime_lex lx;
	struct mime_item it;
	struct mime_tok t;
	int r;

	mime_lex_init(&lx, v, len);
	it.cb = cb;
	it.arg = arg;
	mime_item_reset(&it, IM_BARE);
	do {
		/* Words inside "<...>" are never encoded-words. */
		lx.ew = it.mode == IM_BARE || it.mode == IM_DONE;
		mime_lex_next(&lx, &t);
		if ((r = mime_item_tok(&it, &t)) != 0)
			return r;
	} while (t.type != MT_END);
	return 0;
}

/*
 * Is the token edge at p delimited: white space or a comment before
 * (`after` false) or after it?  "for" must stand alone, or a host name
 * "for.example" would read as the clause.
 */
static bool
mime_is_wsp_at(const char *p, const char *begin, const char *end, bool after)
{
	if (after ? p == end : p == begin)
		return !after;
	p = after ? p : p - 1;
	return *p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' ||
	    *p == (after ? '(' : ')');
}

/*
 * The path after "for": "<...>" up to its '>', or a bare mailbox whose
 * tokens touch each other (Exim writes "for user@host;").
 */
static int
mime_received_path(struct mime_lex *lx, struct mime_item *it)
{
	struct mime_tok t;
	const char *prev_end;
	int r;

	mime_lex_next(lx, &t);
	if (t.type == MT_SPECIAL && t.c == '<') {
		mime_item_reset(it, IM_ANGLE);
		while (it->mode == IM_ANGLE || it->mode == IM_ROUTE) {
			mime_lex_next(lx, &t);
			if ((r = mime_item_tok(it, &t)) != 0 || t.type == MT_END)
				return r;
		}
		return 0;
	}
	mime_item_reset(it, IM_BARE);
	do {
		if (t.type == MT_SPECIAL && (t.c == ';' || t.c == ','))
			break;
		mime_build_tok(&it->b, &t);
		prev_end = t.end;
		mime_lex_next(lx, &t);
	} while (t.type != MT_END && t.start == prev_end);
	return mime_item_end(it, IM_BARE);
}

struct mime_first {
	int		(*cb)(const struct mime_addr *, void *);
	void		*arg;
	int		 r;
};

static int
mime_first_cb(const struct mime_addr *a, void *arg)
{
	struct mime_first *f = arg;

	f->r = f->cb(a, f->arg);
	return 1;	/* stop: one address is all a clause has */
}

int
mime_received_scan(const char *v, size_t len,
    int (*cb)(const struct mime_addr *, void *), void *arg)
{
	struct mime_first f = { cb, arg, 0 };
	struct mime_lex lx;
	struct mime_item it;
	struct mime_tok t;

	mime_lex_init(&lx, v, len);
	it.cb = mime_first_cb;
	it.arg = &f;
	for (;;) {
		mime_lex_next(&lx, &t);
		if (t.type == MT_END)
			return 0;
		/* RFC 5321 4.4: For = CFWS "FOR" CFWS ( Path / Mailbox ) */
		if (t.type != MT_ATOM || t.len != 3 ||
		    strncasecmp(t.s, "for", 3) != 0 ||
		    !mime_is_wsp_at(t.start, v, v + len, false) ||
		    !mime_is_wsp_at(t.end, v, v + len, true))
			continue;
		if (mime_received_path(&lx, &it) != 0)
			return f.r;
	}
}

/*
 * The canonical form, which parses back to itself: a local part that is
 * no dot-atom is quoted, and so is one that holds the start of an
 * encoded-word ("=?"), which unquoted could be read back as display text
 * taking the '@' with it.
 */
size_t
mime_addr_format(const struct mime_addr *a, char *out)
{
	bool quote = !mime_local_is_dot_atom(a->local, a->locallen);
	size_t i, o = 0;

	for (i = 0; !quote && i + 1 < a->locallen; i++)
		quote = a->local[i] == '=' && a->local[i + 1] == '?';

	if (quote)
		out[o++] = '"';
	for (i = 0; i < a->locallen; i++) {
		if (quote && (a->local[i] == '"' || a->local[i] == '\\'))
			out[o++] = '\\';
		out[o++] = a->local[i];
	}
	if (quote)
		out[o++] = '"';
	out[o++] = '@';
	memcpy(out + o, a->domain, a->domainlen);
	o += a->domainlen;
	out[o] = '\0';
	return o;
}

struct mime_list_ctx {
	struct mime_addr_list	 l;
	size_t			 cap, max;
};

static int
mime_list_add(const struct mime_addr *a, void *arg)
{
	struct mime_list_ctx *c = arg;
	char buf[MIME_ADDR_MAX], **na;
	size_t cap;

	if (c->l.n >= c->max)
		return -E2BIG;
	if (c->l.n == c->cap) {
		cap = c->cap == 0 ? 8 : 2 * c->cap;
		if ((na = reallocarray(c->l.addrs, cap, sizeof *na)) == NULL)
			return -ENOMEM;
		c->l.addrs = na;
		c->cap = cap;
	}
	mime_addr_format(a, buf);
	if ((c->l.addrs[c->l.n] = strdup(buf)) == NULL)
		return -ENOMEM;
	c->l.n++;
	return 0;
}

int
mime_parse_addresses(const char *value, size_t len, size_t max,
    struct mime_addr_list *ret)
{
	struct mime_list_ctx c = { .max = max };
	int r;

	if ((r = mime_addr_scan(value, len, mime_list_add, &c)) < 0) {
		mime_addr_list_free(&c.l);
		return r;
	}
	*ret = c.l;
	return 0;
}

void
mime_addr_list_free(struct mime_addr_list *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		free(l->addrs[i]);
	free(l->addrs);
	l->addrs = NULL;
	l->n = 0;
}

static int
mime_dup_cb(const struct mime_addr *a, void *arg)
{
	char buf[MIME_ADDR_MAX];

	mime_addr_format(a, buf);
	*(char **)arg = strdup(buf);
	return 0;
}

char *
mime_received_for(const char *value, size_t len)
{
	char *s = NULL;

	mime_received_scan(value, len, mime_dup_cb, &s);
	return s;
}
