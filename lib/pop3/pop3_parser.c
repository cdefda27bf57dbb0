/*
 * pop3_parser.c - the I/O-free half of POP3: bounded line taking, status
 * lines with RFC 2449 response codes, CAPA / UIDL / LIST / STAT lines and
 * the dot decoder of multi-line replies.  Every function reads only the
 * bytes it is given and keeps no state beyond its arguments.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "base/util.h"
#include "pop3/pop3_parser.h"

#define POP3_MAX_TIMESTAMP	256

enum pop3_dot_state {
	POP3_DOT_BOL,		/* at the start of a line */
	POP3_DOT_MID,		/* inside a line */
	POP3_DOT_DOT,		/* a line started with ".", dot dropped */
	POP3_DOT_DOT_CR,	/* "." then CR at a line start, CR held back */
};

static bool
pop3_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool
pop3_digit(char c)
{
	return c >= '0' && c <= '9';
}

int
pop3_line_take(struct evbuffer *in, char *buf, size_t bufsize, size_t *ret_len)
{
	struct evbuffer_ptr eol;
	size_t raw, len;

	if (bufsize < 2)
		return -EINVAL;
	eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
	if (eol.pos < 0) {
		/* A CR may still come, so the bound allows one byte more. */
		return evbuffer_get_length(in) > bufsize ? -EMSGSIZE : 0;
	}
	raw = (size_t)eol.pos;
	if (raw > bufsize)
		return -EMSGSIZE;
	if (evbuffer_copyout(in, buf, raw) != (ev_ssize_t)raw)
		return -EIO;
	len = raw;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	if (len > bufsize - 1)
		return -EMSGSIZE;
	if (memchr(buf, '\0', len) != NULL)
		return -EPROTO;
	buf[len] = '\0';
	evbuffer_drain(in, raw + 1);
	*ret_len = len;
	return 1;
}

/*
 * RFC 2449 9: resp-code = "[" resp-level *("/" resp-level) "]" with
 * resp-level = 1*rchar, rchar = 0x21-0x7E except "/" and "]" (DEL is
 * refused too: it would only end up escaped).  Returns the length of the
 * code inside the brackets, or 0 when `s` does not open a valid one.
 */
static size_t
pop3_code_len(const char *s, size_t len)
{
	size_t i, level = 0;

	if (len < 3 || s[0] != '[')
		return 0;
	for (i = 1; i < len && i <= POP3_MAX_CODE + 1; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == ']')
			return level > 0 ? i - 1 : 0;
		if (c == '/') {
			if (level == 0)
				return 0;
			level = 0;
		} else if (c < 0x21 || c > 0x7e) {
			return 0;
		} else {
			level++;
		}
	}
	return 0;
}

static void
pop3_status_rest(const char *s, size_t len, struct pop3_status *st)
{
	size_t n;

	while (len > 0 && pop3_blank(*s)) {
		s++;
		len--;
	}
	st->code = NULL;
	st->code_len = 0;
	if ((n = pop3_code_len(s, len)) > 0) {
		st->code = s + 1;
		st->code_len = n;
		s += n + 2;
		len -= n + 2;
		while (len > 0 && pop3_blank(*s)) {
			s++;
			len--;
		}
	}
	st->text = s;
	st->text_len = len;
}

/* `ind` at the start of `line`, then the end, a blank or a "[". */
static bool
pop3_indicator(const char *line, size_t len, const char *ind, size_t n)
{
	return len >= n && strncasecmp(line, ind, n) == 0 &&
	    (len == n || pop3_blank(line[n]) || line[n] == '[');
}

int
pop3_status_parse(const char *line, size_t len, struct pop3_status *ret)
{
	struct pop3_status st;

	if (pop3_indicator(line, len, "+OK", 3)) {
		st.kind = POP3_OK;
		pop3_status_rest(line + 3, len - 3, &st);
	} else if (pop3_indicator(line, len, "-ERR", 4)) {
		st.kind = POP3_ERR;
		pop3_status_rest(line + 4, len - 4, &st);
	} else if (len >= 1 && line[0] == '+' && (len == 1 || line[1] == ' ')) {
		/* The challenge is base64: no code, no trimming. */
		st.kind = POP3_CONT;
		st.code = NULL;
		st.code_len = 0;
		st.text = line + (len > 1 ? 2 : 1);
		st.text_len = len > 1 ? len - 2 : 0;
	} else {
		return -EPROTO;
	}
	*ret = st;
	return 0;
}

int
pop3_apop_timestamp(const char *text, size_t len, size_t *ret_off,
    size_t *ret_len)
{
	size_t i, j;
	bool at;

	for (i = 0; i < len; i++) {
		if (text[i] != '<')
			continue;
		at = false;
		for (j = i + 1; j < len && j - i + 1 < POP3_MAX_TIMESTAMP; j++) {
			unsigned char c = (unsigned char)text[j];

			if (c == '>' || c == '<' || c < 0x21 || c > 0x7e)
				break;
			if (c == '@')
				at = true;
		}
		if (j < len && text[j] == '>' && at) {
			*ret_off = i;
			*ret_len = j - i + 1;
			return 0;
		}
		/* Resume at the byte that stopped this candidate. */
		i = j - 1;
	}
	return -ENOENT;
}

int
pop3_multi_line(char *line, size_t *len)
{
	if (*len == 0 || line[0] != '.')
		return 0;
	if (*len == 1)
		return 1;
	memmove(line, line + 1, *len);		/* with the NUL */
	(*len)--;
	return 0;
}

/* Next blank-separated word of s[*pos..len); false at the end. */
static bool
pop3_word(const char *s, size_t len, size_t *pos, const char **w, size_t *wlen)
{
	size_t i = *pos, start;

	while (i < len && pop3_blank(s[i]))
		i++;
	if (i == len)
		return false;
	start = i;
	while (i < len && !pop3_blank(s[i]))
		i++;
	*w = s + start;
	*wlen = i - start;
	*pos = i;
	return true;
}

static bool
pop3_word_is(const char *w, size_t wlen, const char *s)
{
	return wlen == strlen(s) && strncasecmp(w, s, wlen) == 0;
}

unsigned
pop3_capa_parse(const char *line, size_t len)
{
	static const struct { const char *tag; unsigned bit; } known[] = {
		{ "STLS", POP3_CAP_STLS },
		{ "USER", POP3_CAP_USER },
		{ "PIPELINING", POP3_CAP_PIPELINING },
		{ "UIDL", POP3_CAP_UIDL },
		{ "TOP", POP3_CAP_TOP },
		{ "RESP-CODES", POP3_CAP_RESP_CODES },
	};
	static const struct { const char *name; unsigned bit; } mechs[] = {
		{ "PLAIN", POP3_CAP_SASL_PLAIN },
		{ "XOAUTH2", POP3_CAP_SASL_XOAUTH2 },
		{ "OAUTHBEARER", POP3_CAP_SASL_OAUTHBEARER },
	};
	const char *w;
	size_t pos = 0, wlen, i;
	unsigned bits = 0;

	if (!pop3_word(line, len, &pos, &w, &wlen))
		return 0;
	if (pop3_word_is(w, wlen, "SASL")) {
		while (pop3_word(line, len, &pos, &w, &wlen))
			for (i = 0; i < NELEM(mechs); i++)
				if (pop3_word_is(w, wlen, mechs[i].name))
					bits |= mechs[i].bit;
		return bits;
	}
	for (i = 0; i < NELEM(known); i++)
		if (pop3_word_is(w, wlen, known[i].tag))
			return known[i].bit;
	return 0;
}

int
pop3_listing_parse(const char *line, size_t len, uint32_t *ret_num,
    const char **ret_arg, size_t *ret_arg_len)
{
	size_t i = 0, start, end;
	uint32_t num;

	while (i < len && pop3_blank(line[i]))
		i++;
	start = i;
	while (i < len && pop3_digit(line[i]))
		i++;
	if (i == start || (i < len && !pop3_blank(line[i])) ||
	    parse_u32(line + start, i - start, &num) < 0 || num == 0)
		return -EPROTO;
	while (i < len && pop3_blank(line[i]))
		i++;
	end = len;
	while (end > i && pop3_blank(line[end - 1]))
		end--;
	*ret_num = num;
	*ret_arg = line + i;
	*ret_arg_len = end - i;
	return 0;
}

bool
pop3_uidl_valid(const char *uidl, size_t len)
{
	size_t i;

	if (len == 0 || len > POP3_MAX_UIDL)
		return false;
	for (i = 0; i < len; i++)
		if ((unsigned char)uidl[i] < 0x21 || (unsigned char)uidl[i] > 0x7e)
			return false;
	return true;
}

int
pop3_stat_parse(const char *text, size_t len, uint32_t *ret_count,
    uint64_t *ret_size)
{
	const char *w;
	size_t pos = 0, wlen;
	uint32_t count;
	uint64_t size;

	if (!pop3_word(text, len, &pos, &w, &wlen) ||
	    parse_u32(w, wlen, &count) < 0)
		return -EPROTO;
	if (!pop3_word(text, len, &pos, &w, &wlen) ||
	    parse_u64(w, wlen, &size) < 0)
		return -EPROTO;
	*ret_count = count;
	*ret_size = size;
	return 0;
}

void
pop3_dot_init(struct pop3_dot *d)
{
	memset(d, 0, sizeof *d);
	d->state = POP3_DOT_BOL;
}

static int
pop3_dot_emit(struct pop3_dot *d, const uint8_t *p, size_t n,
    pop3_dot_out_fn *out, void *arg)
{
	if (n == 0)
		return 0;
	d->decoded += n;
	return out(arg, p, n);
}

/*
 * Bytes pass in runs: [run, i) is handed over in one call whenever a byte
 * must be dropped (the stuffing dot) or held (a CR that may belong to the
 * terminator), so a long line costs one callback, not one per byte.
 */
int
pop3_dot_feed(struct pop3_dot *d, const void *buf, size_t len,
    size_t *ret_used, pop3_dot_out_fn *out, void *arg)
{
	const uint8_t *p = buf;
	size_t i, run = 0;
	int err;

	if (d->done)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		uint8_t c = p[i];

		switch (d->state) {
		case POP3_DOT_BOL:
			if (c == '.') {
				if ((err = pop3_dot_emit(d, p + run, i - run,
				    out, arg)) < 0)
					return err;
				run = i + 1;
				d->state = POP3_DOT_DOT;
			} else if (c != '\n') {
				d->state = POP3_DOT_MID;
			}
			break;
		case POP3_DOT_MID:
			if (c == '\n')
				d->state = POP3_DOT_BOL;
			break;
		case POP3_DOT_DOT:
			if (c == '\r') {
				if ((err = pop3_dot_emit(d, p + run, i - run,
				    out, arg)) < 0)
					return err;
				run = i + 1;
				d->state = POP3_DOT_DOT_CR;
			} else {
				/* RFC 1939 3: the stuffing dot is gone. */
				d->state = c == '\n' ? POP3_DOT_BOL : POP3_DOT_MID;
			}
			break;
		case POP3_DOT_DOT_CR:
			if (c == '\n') {
				d->done = true;
				*ret_used = i + 1;
				return 1;
			}
			/* Not the terminator: the held CR was message data. */
			if ((err = pop3_dot_emit(d, (const uint8_t *)"\r", 1,
			    out, arg)) < 0)
				return err;
			d->state = POP3_DOT_MID;
			break;
		}
	}
	if ((err = pop3_dot_emit(d, p + run, len - run, out, arg)) < 0)
		return err;
	*ret_used = len;
	return 0;
}

int
pop3_dot_eof(const struct pop3_dot *d)
{
	return d->done ? 0 : -EPROTO;
}
