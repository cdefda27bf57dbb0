/*
 * fuzz_pop3_dot.c - the POP3 dot decoder against a plain reference
 * written from RFC 1939 3 over the whole input: the streaming decoder,
 * fed whole and in chunks whose sizes come from the input, must hand out
 * the same bytes, stop at the same terminator and consume exactly up to
 * it, and report truncation when there is none.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pop3/pop3_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz_out {
	uint8_t	*buf;
	size_t	 len;
};

static int
fz_out(void *arg, const void *buf, size_t len)
{
	struct fz_out *o = arg;

	if (len == 0)
		abort();		/* the decoder never sends empty runs */
	memcpy(o->buf + o->len, buf, len);
	o->len += len;
	return 0;
}

/*
 * The reference: a line starts at 0 and after every LF; a leading dot is
 * dropped; dot CR LF there ends the reply.  A CR after such a dot is held
 * until the next byte decides, so at the end of the input it is not out.
 */
static int
fz_ref(const uint8_t *in, size_t len, uint8_t *out, size_t *olen,
    size_t *consumed)
{
	size_t i = 0, o = 0;
	bool bol = true;

	while (i < len) {
		if (bol && in[i] == '.') {
			i++;
			if (i == len)
				break;
			if (in[i] == '\r') {
				if (i + 1 == len)
					break;
				if (in[i + 1] == '\n') {
					*olen = o;
					*consumed = i + 2;
					return 1;
				}
				out[o++] = '\r';
				i++;
				bol = false;
				continue;
			}
		}
		out[o++] = in[i];
		bol = in[i] == '\n';
		i++;
	}
	*olen = o;
	*consumed = len;
	return 0;
}

/* Feed in chunks of 1..16 bytes chosen by `seed`; 0 chunk = whole. */
static int
fz_stream(const uint8_t *in, size_t len, uint32_t seed, struct fz_out *o,
    size_t *consumed, struct pop3_dot *d)
{
	size_t pos = 0, n, used;
	int r;

	pop3_dot_init(d);
	*consumed = 0;
	while (pos < len || len == 0) {
		n = seed == 0 ? len - pos : 1 + (seed % 16);
		seed = seed * 1103515245u + 12345u;
		if (n > len - pos)
			n = len - pos;
		r = pop3_dot_feed(d, in + pos, n, &used, fz_out, o);
		if (r < 0)
			abort();
		*consumed += used;
		if (r == 1)
			return 1;
		if (used != n)
			abort();
		pos += n;
		if (len == 0)
			break;
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *want = malloc(size + 1), *got = malloc(size + 1);
	size_t wlen, wcons, gcons, used;
	struct fz_out o;
	struct pop3_dot d;
	uint32_t seed;
	int wr, gr, pass;

	if (want == NULL || got == NULL)
		abort();
	wr = fz_ref(data, size, want, &wlen, &wcons);
	for (pass = 0; pass < 2; pass++) {
		seed = 0;
		if (pass == 1 && size >= 4)
			memcpy(&seed, data, 4);
		if (pass == 1 && seed == 0)
			seed = 7;
		o.buf = got;
		o.len = 0;
		gr = fz_stream(data, size, seed, &o, &gcons, &d);
		if (gr != wr || o.len != wlen || gcons != wcons ||
		    memcmp(got, want, wlen) != 0 || d.decoded != wlen)
			abort();
		if (pop3_dot_eof(&d) != (wr == 1 ? 0 : -EPROTO))
			abort();
		if (wr == 1 && pop3_dot_feed(&d, "x", 1, &used, fz_out, &o) !=
		    -EINVAL)
			abort();
	}
	free(want);
	free(got);
	return 0;
}
