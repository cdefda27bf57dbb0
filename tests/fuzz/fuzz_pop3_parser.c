/*
 * fuzz_pop3_parser.c - POP3 lines: the input is cut into lines by
 * pop3_line_take() (with a large and a small bound), and every line goes
 * through the status, CAPA, listing, STAT, APOP timestamp and multi-line
 * helpers.  Whatever they return must point inside the line, respect the
 * stated limits and leave out-parameters alone on error.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "pop3/pop3_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fz_inside(const char *line, size_t len, const char *p, size_t plen)
{
	if (p < line || p > line + len || plen > (size_t)(line + len - p))
		abort();
}

static void
fz_status(const char *line, size_t len)
{
	struct pop3_status st;
	size_t i;

	if (pop3_status_parse(line, len, &st) != 0)
		return;
	if (st.kind != POP3_OK && st.kind != POP3_ERR && st.kind != POP3_CONT)
		abort();
	fz_inside(line, len, st.text, st.text_len);
	if (st.code == NULL)
		return;
	fz_inside(line, len, st.code, st.code_len);
	if (st.code_len == 0 || st.code_len > POP3_MAX_CODE ||
	    st.code[-1] != '[' || st.code[st.code_len] != ']' ||
	    st.code[0] == '/' || st.code[st.code_len - 1] == '/')
		abort();
	for (i = 0; i < st.code_len; i++)
		if ((unsigned char)st.code[i] < 0x21 ||
		    (unsigned char)st.code[i] > 0x7e || st.code[i] == ']' ||
		    (st.code[i] == '/' && st.code[i + 1] == '/'))
			abort();
}

static void
fz_listing(const char *line, size_t len)
{
	const char *arg = NULL;
	size_t alen = 12345, off, tlen;
	uint32_t num = 0, count = 77;
	uint64_t size = 77;

	if (pop3_listing_parse(line, len, &num, &arg, &alen) == 0) {
		if (num == 0)
			abort();
		fz_inside(line, len, arg, alen);
		if (alen > 0 && (arg[0] == ' ' || arg[alen - 1] == ' '))
			abort();
		if (pop3_uidl_valid(arg, alen) &&
		    (alen == 0 || alen > POP3_MAX_UIDL ||
		    memchr(arg, ' ', alen) != NULL))
			abort();
	} else if (arg != NULL || alen != 12345 || num != 0) {
		abort();
	}
	if (pop3_stat_parse(line, len, &count, &size) != 0 &&
	    (count != 77 || size != 77))
		abort();
	if (pop3_apop_timestamp(line, len, &off, &tlen) == 0) {
		fz_inside(line, len, line + off, tlen);
		if (tlen < 3 || tlen > 256 || line[off] != '<' ||
		    line[off + tlen - 1] != '>' ||
		    memchr(line + off, '@', tlen) == NULL)
			abort();
	}
	(void)pop3_capa_parse(line, len);
}

static void
fz_multi(const char *line, size_t len)
{
	char *copy = malloc(len + 1);
	size_t n = len;

	if (copy == NULL)
		abort();
	memcpy(copy, line, len + 1);
	if (pop3_multi_line(copy, &n) == 1) {
		if (len != 1 || line[0] != '.')
			abort();
	} else if (line[0] == '.' ? (n != len - 1 ||
	    memcmp(copy, line + 1, n + 1) != 0) : (n != len ||
	    memcmp(copy, line, len) != 0)) {
		abort();
	}
	free(copy);
}

static void
fz_lines(const uint8_t *data, size_t size, size_t bufsize)
{
	struct evbuffer *in = evbuffer_new();
	char *buf = malloc(bufsize);
	size_t len, before;
	int r;

	if (in == NULL || buf == NULL || evbuffer_add(in, data, size) != 0)
		abort();
	for (;;) {
		before = evbuffer_get_length(in);
		r = pop3_line_take(in, buf, bufsize, &len);
		if (r <= 0) {
			if (evbuffer_get_length(in) != before)
				abort();
			break;
		}
		if (len >= bufsize || buf[len] != '\0' ||
		    memchr(buf, '\0', len) != NULL ||
		    evbuffer_get_length(in) >= before)
			abort();
		fz_status(buf, len);
		fz_listing(buf, len);
		fz_multi(buf, len);
	}
	evbuffer_free(in);
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_lines(data, size, POP3_MAX_LINE + 1);
	fz_lines(data, size, 16);
	return 0;
}
