/*
 * test_imap_parser.c - the IMAP response parser: every response type, every
 * limit, every error path, and the property that matters most for a
 * network parser: the result does not depend on how the bytes were split.
 */
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

static void
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
static void
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

static void
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

static int
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

static int
t_data(void *arg, const void *buf, size_t len)
{
	struct tctx *t = arg;

	assert_true(len > 0);
	t->n_data += len;
	dump_bytes(t->log, buf, len);
	return t->data_ret;
}

static int
t_end(void *arg)
{
	struct tctx *t = arg;

	t->n_end++;
	evbuffer_add_printf(t->log, "<end>");
	return t->end_ret;
}

static const struct imap_literal_ops t_ops = { t_begin, t_data, t_end };

/* One parser over one input buffer. */
struct fix {
	struct imap_parser *p;
	struct evbuffer *in;
	struct tctx t;
};

static void
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

static void
fix_done(struct fix *f)
{
	imap_parser_free(f->p);
	evbuffer_free(f->in);
	evbuffer_free(f->t.log);
}

static int
fix_feed(struct fix *f, const char *s, size_t len,
    const struct imap_response **r)
{
	evbuffer_add(f->in, s, len);
	return imap_parser_feed(f->p, f->in, r);
}

#define FEED(f, lit, r) fix_feed((f), (lit), sizeof(lit) - 1, (r))

/*
 * Feed `in` as a first piece of `first` bytes, then `step` bytes at a
 * time; return (malloc'ed) everything that was seen, responses and
 * callbacks in order, and the final result.
 */
static char *
run_split(const char *in, size_t len, size_t first, size_t step,
    const struct imap_limits *lim, bool ops, uint64_t stream_min)
{
	const struct imap_response *r;
	struct fix f;
	size_t off = 0, n;
	char *out;
	int rc = 0;

	fix_init(&f, lim, ops);
	f.t.stream_min = stream_min;
	while (rc >= 0) {
		n = off == 0 ? first : step;
		if (n > len - off)
			n = len - off;
		evbuffer_add(f.in, in + off, n);
		off += n;
		while ((rc = imap_parser_feed(f.p, f.in, &r)) == 1)
			dump_resp(f.t.log, r);
		if (off == len)
			break;
	}
	evbuffer_add_printf(f.t.log, "rc=%d", rc);
	if (rc < 0)
		evbuffer_add_printf(f.t.log, " err=%s", imap_parser_error(f.p));
	else
		evbuffer_add_printf(f.t.log, " left=%zu",
		    evbuffer_get_length(f.in));
	n = evbuffer_get_length(f.t.log);
	out = malloc(n + 1);
	assert_non_null(out);
	evbuffer_remove(f.t.log, out, n);
	out[n] = '\0';
	fix_done(&f);
	return out;
}

/* Every split point, byte at a time, and a few odd steps: same result. */
static void
check_splits(const char *in, size_t len, bool ops, uint64_t stream_min,
    const struct imap_limits *lim)
{
	static const size_t steps[] = { 1, 2, 3, 7, 64 };
	char *ref, *got;
	size_t k, i;

	ref = run_split(in, len, len, len, lim, ops, stream_min);
	for (k = 1; k < len; k++) {
		got = run_split(in, len, k, len, lim, ops, stream_min);
		if (strcmp(ref, got) != 0)
			fail_msg("split at %zu differs:\n%s\n--- vs ---\n%s",
			    k, ref, got);
		free(got);
	}
	for (i = 0; i < sizeof steps / sizeof *steps; i++) {
		got = run_split(in, len, steps[i], steps[i], lim, ops,
		    stream_min);
		if (strcmp(ref, got) != 0)
			fail_msg("step %zu differs:\n%s\n--- vs ---\n%s",
			    steps[i], ref, got);
		free(got);
	}
	free(ref);
}

/* A session's worth of responses of every kind. */
static const char session[] =
    "* OK [CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN] Dovecot ready.\r\n"
    "a1 OK [READ-ONLY] EXAMINE completed (0.001 secs)\r\n"
    "* CAPABILITY IMAP4rev1 IDLE UIDPLUS\r\n"
    "* LIST (\\HasNoChildren) \"/\" INBOX\r\n"
    "* LIST (\\Noselect) NIL {9}\r\nweird\"nam\r\n"
    "* LSUB () \".\" \"Sent \\\"Items\\\\\"\r\n"
    "* STATUS \"Sent Items\" (MESSAGES 231 UIDNEXT 44292)\r\n"
    "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
    "* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n"
    "* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"
    "* NO [REFERRAL imap://u;AUTH=*@s2/] try s2\r\n"
    "* SEARCH 2 84 882 \r\n"
    "* ESEARCH (TAG \"a1\") UID ALL 1:5\r\n"
    "* ENABLED CONDSTORE\r\n"
    "* ID (\"name\" \"Dovecot\" \"version\" NIL)\r\n"
    "* NAMESPACE ((\"\" \"/\")) NIL ((\"#shared/\" \"/\"))\r\n"
    "* 23 EXISTS\r\n* 1 RECENT\r\n* 44 EXPUNGE\r\n"
    "+ Ready for literal data\r\n+\r\n+ YWJjZA==\r\n"
    "* 5 FETCH (UID 12 FLAGS (\\Seen) RFC822.SIZE 7 "
    "INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" BODY[] {7}\r\n"
    "a\0b\r\n)c BODY[HEADER.FIELDS (FROM TO)] {0}\r\n)\r\n"
    "* 6 fetch (BODY[]<0> {3}\r\nxyz BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" "
    "(\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3 1) \"MIXED\"))\n"
    "* OK [ALERT] \x1b[31mred\" (unbalanced \xc3\xa4 {5}\r\n"
    "* BYE [UNKNOWN-CODE a \"b ( c] going away\r\n"
    "a2 bad [BADCHARSET (UTF-8 \"US-ASCII\")] no\r\n"
    "a3 NO\r\n* PREAUTH [ not a code\r\n";

static void
test_splits_session(void **state)
{
	/* In memory, streamed from 1 byte on, and without callbacks. */
	check_splits(session, sizeof session - 1, true, UINT64_MAX, NULL);
	check_splits(session, sizeof session - 1, true, 1, NULL);
	check_splits(session, sizeof session - 1, false, 0, NULL);
}

static void
test_splits_errors(void **state)
{
#define S(x) { x, sizeof(x) - 1 }
	static const struct {
		const char *s;
		size_t len;
	} bad[] = {
		S("* OK fine\r\n* LIST (\\X) \"a\\q\" b\r\n"),
		S("* OK x\r\n* 1 FETCH (BODY[] {3}\r\nab\0 \"open\r\n"),
		S("* OK x\r\n* SEARCH 1 \r 2\r\n"),
		S("* OK x\r\n* SEARCH 1 2\0\r\n"),
		S("* 1 FETCH (BODY[] {99999999999999999999}\r\n"),
		S("* X ((((((((((((((((((((((((((((((((((((((((()))\r\n"),
		S("* OK x\r\n* LIST {3}\r\nabc{3}\r\nabc\r\n"),
	};
#undef S
	struct imap_limits lim;
	size_t i;

	imap_limits_default(&lim);
	lim.max_line = 40;	/* the first response is longer: EMSGSIZE */
	check_splits(session, 200, true, 1, &lim);
	for (i = 0; i < sizeof bad / sizeof *bad; i++)
		check_splits(bad[i].s, bad[i].len, true, 2, NULL);
}

static void
test_tagged(void **state)
{
	const struct imap_response *r;
	struct fix f;

	fix_init(&f, NULL, false);
	assert_int_equal(FEED(&f, "a1 OK [READ-ONLY] EXAMINE done\r\n", &r), 1);
	assert_int_equal(r->type, IMAP_R_TAGGED);
	assert_string_equal(r->tag, "a1");
	assert_int_equal(r->status, IMAP_ST_OK);
	assert_string_equal(r->keyword, "");
	assert_string_equal(r->code, "READ-ONLY");
	assert_int_equal(r->n_code_args, 0);
	assert_string_equal(r->text, "EXAMINE done");
	assert_int_equal(r->text_len, 12);
	assert_false(r->has_number);
	assert_int_equal(FEED(&f, "a2 no failed\r\na3 Bad\r\n", &r), 1);
	assert_int_equal(r->status, IMAP_ST_NO);
	assert_null(r->code);
	assert_string_equal(r->text, "failed");
	/* The second response was left in the buffer for the next call. */
	assert_int_equal(imap_parser_feed(f.p, f.in, &r), 1);
	assert_int_equal(r->status, IMAP_ST_BAD);
	assert_string_equal(r->tag, "a3");
	assert_int_equal(r->text_len, 0);
	assert_int_equal(imap_parser_feed(f.p, f.in, &r), 0);
	assert_string_equal(imap_parser_error(f.p), "no error");
	fix_done(&f);
}

static void
test_status_codes(void **state)
{
	const struct imap_response *r;
	struct fix f;
	uint32_t u;
	uint64_t u64;

	fix_init(&f, NULL, false);
	assert_int_equal(FEED(&f, "* OK [UIDVALIDITY 3857529045] ok\r\n", &r), 1);
	assert_int_equal(r->type, IMAP_R_UNTAGGED);
	assert_null(r->tag);
	assert_string_equal(r->code, "UIDVALIDITY");
	assert_int_equal(r->n_code_args, 1);
	assert_int_equal(imap_value_u32(&r->code_args[0], &u), 0);
	assert_int_equal(u, 3857529045U);
	assert_int_equal(FEED(&f, "* ok [uidnext 4]\r\n", &r), 1);
	assert_int_equal(r->status, IMAP_ST_OK);
	assert_string_equal(r->code, "UIDNEXT");
	assert_string_equal(r->text, "");
	assert_int_equal(FEED(&f, "* OK [HIGHESTMODSEQ 715194045007] x\r\n", &r), 1);
	assert_int_equal(imap_value_u64(&r->code_args[0], &u64), 0);
	assert_int_equal(u64, 715194045007ULL);
	assert_int_equal(imap_value_u32(&r->code_args[0], &u), -EINVAL);
	assert_int_equal(FEED(&f, "* OK [PERMANENTFLAGS (\\Seen \\*)] L\r\n", &r), 1);
	assert_int_equal(r->n_code_args, 1);
	assert_int_equal(r->code_args[0].type, IMAP_V_LIST);
	assert_int_equal(r->code_args[0].n_items, 2);
	assert_true(imap_value_is(&r->code_args[0].items[0], "\\SEEN"));
	assert_string_equal(r->code_args[0].items[1].str, "\\*");
	assert_int_equal(FEED(&f, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\n", &r), 1);
	assert_int_equal(r->n_code_args, 2);
	assert_string_equal(r->code_args[1].str, "AUTH=PLAIN");
	assert_string_equal(r->text, "hi");
	assert_int_equal(FEED(&f, "* NO [REFERRAL imap://u;AUTH=*@s/] go\r\n", &r), 1);
	assert_int_equal(r->status, IMAP_ST_NO);
	assert_int_equal(r->n_code_args, 1);
	assert_string_equal(r->code_args[0].str, "imap://u;AUTH=*@s/");
	assert_int_equal(FEED(&f, "a9 NO [BADCHARSET (UTF-8 US-ASCII)] x\r\n", &r), 1);
	assert_int_equal(r->code_args[0].n_items, 2);
	assert_int_equal(FEED(&f, "* BYE [XY-Z a \"b ( c] rest \"(\r\n", &r), 1);
	assert_int_equal(r->status, IMAP_ST_BYE);
	assert_string_equal(r->code, "XY-Z");
	assert_int_equal(r->n_code_args, 1);
	assert_string_equal(r->code_args[0].str, "a \"b ( c");
	assert_string_equal(r->text, "rest \"(");
	assert_int_equal(FEED(&f, "* PREAUTH [never closed\r\n", &r), 1);
	assert_int_equal(r->status, IMAP_ST_PREAUTH);
	assert_null(r->code);
	assert_string_equal(r->text, "[never closed");
	fix_done(&f);
}

static void
test_alert_raw_text(void **state)
{
	static const char in[] = "* OK [ALERT] \x1b[2J\xff{3}\r\n* 1 EXISTS\r\n";
	const struct imap_response *r;
	struct fix f;

	fix_init(&f, NULL, true);
	assert_int_equal(FEED(&f, in, &r), 1);
	assert_string_equal(r->code, "ALERT");
	assert_int_equal(r->text_len, 8);
	assert_memory_equal(r->text, "\x1b[2J\xff{3}", 8);
	/* "{3}" at the end of free text is no literal. */
	assert_int_equal(f.t.n_begin, 0);
	assert_int_equal(imap_parser_feed(f.p, f.in, &r), 1);
	assert_string_equal(r->keyword, "EXISTS");
	fix_done(&f);
}

static void
test_data_responses(void **state)
{
	const struct imap_response *r;
	struct fix f;

	fix_init(&f, NULL, false);
	assert_int_equal(FEED(&f, "* CAPABILITY IMAP4rev1 IDLE\r\n", &r), 1);
	assert_int_equal(r->status, IMAP_ST_NONE);
	assert_string_equal(r->keyword, "CAPABILITY");
	assert_int_equal(r->n_args, 2);
	assert_null(r->code);
	assert_int_equal(FEED(&f, "* list (\\HasNoChildren) \"/\" INBOX\r\n", &r), 1);
	assert_string_equal(r->keyword, "LIST");
	assert_int_equal(r->n_args, 3);
	assert_int_equal(r->args[0].type, IMAP_V_LIST);
	assert_int_equal(r->args[1].type, IMAP_V_STRING);
	assert_string_equal(r->args[1].str, "/");
	assert_int_equal(r->args[2].type, IMAP_V_ATOM);
	assert_int_equal(FEED(&f, "* LIST () NiL \"a\\\"b\\\\\"\r\n", &r), 1);
	assert_int_equal(r->args[0].n_items, 0);
	assert_int_equal(r->args[1].type, IMAP_V_NIL);
	assert_string_equal(r->args[2].str, "a\"b\\");
	assert_int_equal(r->args[2].len, 4);
	assert_int_equal(FEED(&f, "* SEARCH\r\n", &r), 1);
	assert_int_equal(r->n_args, 0);
	assert_int_equal(FEED(&f, "* ESEARCH (TAG \"a1\") UID ALL 1:5\r\n", &r), 1);
	assert_int_equal(r->n_args, 4);
	assert_true(imap_value_is(&r->args[0].items[0], "tag"));
	assert_true(imap_value_is(&r->args[0].items[1], "a1"));
	assert_string_equal(r->args[3].str, "1:5");
	assert_int_equal(FEED(&f, "* 4294967295 EXISTS\r\n", &r), 1);
	assert_true(r->has_number);
	assert_int_equal(r->number, 4294967295U);
	assert_string_equal(r->keyword, "EXISTS");
	assert_int_equal(r->n_args, 0);
	assert_int_equal(FEED(&f, "* 3 expunge\r\n", &r), 1);
	assert_string_equal(r->keyword, "EXPUNGE");
	fix_done(&f);
}

static void
test_fetch_values(void **state)
{
	static const char in[] =
	    "* 12 FETCH (FLAGS (\\Seen $Junk) BODY[HEADER.FIELDS (FROM TO)]"
	    " {5}\r\nF: x\n BODY[]<0> \"\" X-GM-LABELS (\\Inbox \"a b\"))\r\n";
	const struct imap_response *r;
	const struct imap_value *l;
	struct fix f;

	fix_init(&f, NULL, false);
	assert_int_equal(FEED(&f, in, &r), 1);
	assert_int_equal(r->number, 12);
	assert_string_equal(r->keyword, "FETCH");
	assert_int_equal(r->n_args, 1);
	l = &r->args[0];
	assert_int_equal(l->n_items, 8);
	assert_string_equal(l->items[2].str, "BODY[HEADER.FIELDS (FROM TO)]");
	assert_int_equal(l->items[3].type, IMAP_V_STRING);
	assert_int_equal(l->items[3].len, 5);
	assert_memory_equal(l->items[3].str, "F: x\n", 6);
	assert_string_equal(l->items[4].str, "BODY[]<0>");
	assert_int_equal(l->items[5].len, 0);
	assert_string_equal(l->items[7].items[1].str, "a b");
	fix_done(&f);
}

static void
test_continuation(void **state)
{
	const struct imap_response *r;
	struct fix f;

	fix_init(&f, NULL, false);
	assert_int_equal(FEED(&f, "+ Ready (for \"it\r\n", &r), 1);
	assert_int_equal(r->type, IMAP_R_CONTINUE);
	assert_string_equal(r->text, "Ready (for \"it");
	assert_int_equal(FEED(&f, "+\r\n", &r), 1);
	assert_int_equal(r->type, IMAP_R_CONTINUE);
	assert_int_equal(r->text_len, 0);
	assert_int_equal(FEED(&f, "+ \r\n", &r), 1);
	assert_int_equal(r->text_len, 0);
	assert_int_equal(FEED(&f, "+ YWJjZA==\n", &r), 1);
	assert_string_equal(r->text, "YWJjZA==");
	assert_int_equal(FEED(&f, "+x\r\n", &r), -EPROTO);
	fix_done(&f);
}

static void
test_literal_bytes_inline(void **state)
{
	static const char in[] = "* 1 FETCH (BODY[] {7}\r\na\0b\r\n)c)\r\n";
	const struct imap_response *r;
	struct fix f;

	fix_init(&f, NULL, true);
	f.t.stream_min = 8;	/* begin() answers 0: keep it */
	assert_int_equal(FEED(&f, in, &r), 1);
	assert_int_equal(f.t.n_begin, 1);
	assert_int_equal(f.t.begin_size, 7);
	assert_string_equal(f.t.section, "BODY[]");
	assert_true(f.t.in_fetch);
	assert_int_equal(r->args[0].items[1].type, IMAP_V_STRING);
	assert_int_equal(r->args[0].items[1].len, 7);
	assert_memory_equal(r->args[0].items[1].str, "a\0b\r\n)c", 8);
	fix_done(&f);
}

static void
test_literal_streamed(void **state)
{
	static const char in[] =
	    "* 3 FETCH (UID 9 BODY[] {7}\r\na\0b\r\n)c RFC822.SIZE 7)\r\n"
	    "* LIST () \"/\" {5}\r\nINBOX\r\n";
	const struct imap_response *r;
	struct fix f;
	char got[64];
	size_t n;

	fix_init(&f, NULL, true);
	f.t.stream_min = 6;
	assert_int_equal(FEED(&f, in, &r), 1);
	assert_int_equal(r->args[0].items[3].type, IMAP_V_STREAMED);
	assert_int_equal(r->args[0].items[3].streamed_size, 7);
	assert_int_equal(r->args[0].n_items, 6);
	assert_int_equal(f.t.n_data, 7);
	assert_int_equal(f.t.n_end, 1);
	n = evbuffer_remove(f.t.log, got, sizeof got - 1);
	got[n] = '\0';
	assert_string_equal(got, "<begin 7 'BODY[]' 1>a\\x00b\\x0d\\x0a)c<end>");
	/* Outside FETCH, after a string: no section; kept in memory. */
	assert_int_equal(imap_parser_feed(f.p, f.in, &r), 1);
	assert_false(f.t.in_fetch);
	assert_string_equal(f.t.section, "");
	assert_string_equal(r->args[2].str, "INBOX");
	fix_done(&f);
}

static void
test_literal_section_hint(void **state)
{
	static const struct {
		const char *in, *section;
	} c[] = {
		{ "* 1 FETCH (BODY[HEADER.FIELDS (A B)] {1}\r\nx)\r\n",
		  "BODY[HEADER.FIELDS (A B)]" },
		{ "* 1 FETCH (BODY[]<0> {1}\r\nx)\r\n", "BODY[]<0>" },
		{ "* 1 FETCH (RFC822 {1}\r\nx)\r\n", "RFC822" },
		{ "* 1 FETCH (X ({1}\r\nx))\r\n", "" },
		{ "* 1 FETCH (X (A) {1}\r\nx)\r\n", "" },
	};
	const struct imap_response *r;
	struct fix f;
	size_t i;

	for (i = 0; i < sizeof c / sizeof *c; i++) {
		fix_init(&f, NULL, true);
		assert_int_equal(fix_feed(&f, c[i].in, strlen(c[i].in), &r), 1);
		assert_string_equal(f.t.section, c[i].section);
		assert_true(f.t.in_fetch);
		fix_done(&f);
	}
}

static void
test_literal_zero_and_plus(void **state)
{
	const struct imap_response *r;
	struct fix f;

	fix_init(&f, NULL, true);
	f.t.stream_min = 0;
	assert_int_equal(FEED(&f, "* 2 FETCH (BODY[] {0}\r\n)\r\n", &r), 1);
	assert_int_equal(r->args[0].items[1].type, IMAP_V_STREAMED);
	assert_int_equal(f.t.n_end, 1);
	assert_int_equal(f.t.n_data, 0);
	assert_int_equal(FEED(&f, "* LIST () \"/\" {3+}\r\nabc\r\n", &r), 1);
	assert_int_equal(r->args[2].streamed_size, 3);
	fix_done(&f);
}

static void
test_literal_callback_errors(void **state)
{
	static const char in[] = "* 1 FETCH (BODY[] {3}\r\nabc)\r\n";
	const struct imap_response *r;
	struct fix f;

	fix_init(&f, NULL, true);
	f.t.begin_ret = -ENOSPC;
	assert_int_equal(FEED(&f, in, &r), -ENOSPC);
	assert_int_equal(imap_parser_feed(f.p, f.in, &r), -ENOSPC);
	fix_done(&f);
	fix_init(&f, NULL, true);
	f.t.stream_min = 0;
	f.t.data_ret = -EIO;
	assert_int_equal(FEED(&f, in, &r), -EIO);
	fix_done(&f);
	fix_init(&f, NULL, true);
	f.t.stream_min = 0;
	f.t.end_ret = -EPIPE;
	assert_int_equal(FEED(&f, in, &r), -EPIPE);
	assert_non_null(strstr(imap_parser_error(f.p), "literal"));
	fix_done(&f);
}

static void
test_inline_literal_limit(void **state)
{
	struct imap_limits lim;
	const struct imap_response *r;
	struct fix f;

	imap_limits_default(&lim);
	lim.max_inline_literal = 4;
	/* begin() says keep: 4 bytes fit, 5 do not. */
	fix_init(&f, &lim, true);
	assert_int_equal(FEED(&f, "* X {4}\r\nabcd\r\n", &r), 1);
	assert_int_equal(FEED(&f, "* X {5}\r\nabcde\r\n", &r), -EMSGSIZE);
	fix_done(&f);
	/* Without callbacks the same bound holds. */
	fix_init(&f, &lim, false);
	assert_int_equal(FEED(&f, "* X {5}\r\n", &r), -EMSGSIZE);
	fix_done(&f);
	/* Streamed, the size does not matter. */
	fix_init(&f, &lim, true);
	f.t.stream_min = 5;
	assert_int_equal(FEED(&f, "* X {5}\r\nabcde\r\n", &r), 1);
	fix_done(&f);
}

static void
expect_size(const char *in, uint64_t max_literal, int want)
{
	struct imap_limits lim;
	const struct imap_response *r;
	struct fix f;

	imap_limits_default(&lim);
	lim.max_literal = max_literal;
	fix_init(&f, &lim, true);
	f.t.stream_min = 0;
	assert_int_equal(fix_feed(&f, in, strlen(in), &r), want);
	/* Refused sizes never reach begin(). */
	assert_int_equal(f.t.n_begin, want < 0 ? 0 : 1);
	fix_done(&f);
}

static void
test_literal_sizes(void **state)
{
	expect_size("* 1 FETCH (BODY[] {2147483648}\r\n", 256 << 20, -EMSGSIZE);
	expect_size("* 1 FETCH (BODY[] {4294967296}\r\n", 256 << 20, -EMSGSIZE);
	expect_size("* 1 FETCH (BODY[] {9223372036854775808}\r\n",
	    UINT32_MAX, -EMSGSIZE);
	expect_size("* 1 FETCH (BODY[] {18446744073709551616}\r\n",
	    UINT64_MAX, -EMSGSIZE);
	expect_size("* 1 FETCH (BODY[] {99999999999999999999999}\r\n",
	    UINT64_MAX, -EMSGSIZE);
	expect_size("* 1 FETCH (BODY[] {4294967296}\r\n", UINT64_MAX, 0);
	expect_size("* 1 FETCH (BODY[] {18446744073709551615}\r\n",
	    UINT64_MAX, 0);
	expect_size("* 1 FETCH (BODY[] {00000000000000000000005}\r\n", 5, 0);
	expect_size("* 1 FETCH (BODY[] {6}\r\n", 5, -EMSGSIZE);
}

static void
test_max_line(void **state)
{
	struct imap_limits lim;
	const struct imap_response *r;
	struct fix f;
	char chunk[65536];
	size_t fed = 0;
	int rc = 0;

	imap_limits_default(&lim);
	lim.max_line = 12;
	fix_init(&f, &lim, false);
	assert_int_equal(FEED(&f, "* SEARCH 1 2\r\n", &r), 1);	/* 12 */
	assert_int_equal(FEED(&f, "* SEARCH 1 23\r\n", &r), -EMSGSIZE);
	assert_non_null(strstr(imap_parser_error(f.p), "12 bytes"));
	fix_done(&f);
	/* Literal lines count together, literal bytes do not. */
	lim.max_line = 20;
	memset(chunk, 'a', sizeof chunk);
	fix_init(&f, &lim, true);
	f.t.stream_min = 0;
	assert_int_equal(FEED(&f, "* X {100}\r\n", &r), 0);
	evbuffer_add(f.in, chunk, 100);
	assert_int_equal(FEED(&f, " {1}\r\nx 123456\r\n", &r), 1);
	assert_int_equal(FEED(&f, "* X {0}\r\n {0}\r\n {0}\r\n {0}\r\n {0}\r\n", &r),
	    -EMSGSIZE);
	fix_done(&f);
	/* A 1 GiB line: refused once past max_line, nothing more buffered. */
	imap_limits_default(&lim);
	fix_init(&f, &lim, false);
	evbuffer_add(f.in, "* X ", 4);
	while (fed < (1ULL << 30) && rc == 0) {
		evbuffer_add(f.in, chunk, sizeof chunk);
		fed += sizeof chunk;
		rc = imap_parser_feed(f.p, f.in, &r);
	}
	assert_int_equal(rc, -EMSGSIZE);
	assert_true(fed <= lim.max_line + sizeof chunk);
	fix_done(&f);
}

static void
test_max_depth(void **state)
{
	struct imap_limits lim;
	const struct imap_response *r;
	struct evbuffer *b;
	struct fix f;
	clock_t t0;
	int i;

	imap_limits_default(&lim);
	lim.max_depth = 3;
	fix_init(&f, &lim, false);
	assert_int_equal(FEED(&f, "* X (((a)) ((b)))\r\n", &r), 1);
	assert_string_equal(r->args[0].items[1].items[0].items[0].str, "b");
	assert_int_equal(FEED(&f, "* X ((((a))))\r\n", &r), -EMSGSIZE);
	fix_done(&f);
	/* 100,000 '(' : fails at once, the stack does not notice. */
	fix_init(&f, NULL, false);
	b = evbuffer_new();
	evbuffer_add(b, "* 1 FETCH ", 10);
	for (i = 0; i < 100000; i++)
		evbuffer_add(b, "(", 1);
	for (i = 0; i < 100000; i++)
		evbuffer_add(b, ")", 1);
	evbuffer_add(b, "\r\n", 2);
	evbuffer_add_buffer(f.in, b);
	t0 = clock();
	assert_int_equal(imap_parser_feed(f.p, f.in, &r), -EMSGSIZE);
	assert_true(clock() - t0 < CLOCKS_PER_SEC);
	assert_non_null(strstr(imap_parser_error(f.p), "deeper than 32"));
	evbuffer_free(b);
	fix_done(&f);
}

static void
test_max_items(void **state)
{
	struct imap_limits lim;
	const struct imap_response *r;
	struct fix f;

	imap_limits_default(&lim);
	lim.max_items = 4;
	fix_init(&f, &lim, false);
	assert_int_equal(FEED(&f, "* SEARCH 1 2 3 4\r\n", &r), 1);
	assert_int_equal(FEED(&f, "* X (1 2) 3\r\n", &r), 1);
	assert_int_equal(FEED(&f, "* X (1 2) (3)\r\n", &r), -EMSGSIZE);
	fix_done(&f);
	fix_init(&f, &lim, false);
	assert_int_equal(FEED(&f, "* SEARCH 1 2 3 4 5\r\n", &r), -EMSGSIZE);
	fix_done(&f);
}

static void
test_tag_length(void **state)
{
	const struct imap_response *r;
	char line[128];
	struct fix f;

	memset(line, 't', 64);
	strcpy(line + 64, " OK x\r\n");
	fix_init(&f, NULL, false);
	assert_int_equal(fix_feed(&f, line, strlen(line), &r), 1);
	assert_int_equal(strlen(r->tag), 64);
	fix_done(&f);
	memset(line, 't', 65);
	strcpy(line + 65, " OK x\r\n");
	fix_init(&f, NULL, false);
	assert_int_equal(fix_feed(&f, line, strlen(line), &r), -EMSGSIZE);
	fix_done(&f);
}

static void
expect_err(const char *in, size_t len, int want)
{
	const struct imap_response *r;
	struct fix f;
	int rc;

	fix_init(&f, NULL, true);
	rc = fix_feed(&f, in, len, &r);
	if (rc != want)
		fail_msg("'%s': got %d want %d (%s)", in, rc, want,
		    imap_parser_error(f.p));
	/* After an error the parser stays failed. */
	if (want < 0)
		assert_int_equal(imap_parser_feed(f.p, f.in, &r), want);
	fix_done(&f);
}

#define EXPECT_ERR(lit, want) expect_err((lit), sizeof(lit) - 1, (want))

static void
test_line_bytes(void **state)
{
	EXPECT_ERR("* OK a\0b\r\n", -EPROTO);
	EXPECT_ERR("* OK a\rb\r\n", -EPROTO);
	EXPECT_ERR("* OK a\r\r\n", -EPROTO);
	EXPECT_ERR("\r\n", -EPROTO);
	EXPECT_ERR("\n", -EPROTO);
	EXPECT_ERR("* OK a\n", 1);
	EXPECT_ERR("* OK a\r", 0);
	EXPECT_ERR("* SEARCH 1\r\n", 1);
}

static void
test_quoted_errors(void **state)
{
	EXPECT_ERR("* LIST () \"/\" \"a\\nb\"\r\n", -EPROTO);
	EXPECT_ERR("* LIST () \"/\" \"abc\r\n", -EPROTO);
	EXPECT_ERR("* LIST () \"/\" \"abc\\\"\r\n", -EPROTO);
	EXPECT_ERR("* LIST () \"/\" \"abc\\\r\n", -EPROTO);
	EXPECT_ERR("* LIST () \"/\" \"ab {3}\r\nxyz\"\r\n", -EPROTO);
	EXPECT_ERR("* LIST () \"/\" \"a\tb\xc3\xa4\"\r\n", 1);
	EXPECT_ERR("* LIST () \"/\" \"a\"b\r\n", -EPROTO);
}

static void
test_garbage(void **state)
{
	EXPECT_ERR("foo\r\n", -EPROTO);
	EXPECT_ERR("a1 FOO bar\r\n", -EPROTO);
	EXPECT_ERR("a1 BYE bar\r\n", -EPROTO);
	EXPECT_ERR("a(1 OK x\r\n", -EPROTO);
	EXPECT_ERR("*\r\n", -EPROTO);
	EXPECT_ERR("* \r\n", -EPROTO);
	EXPECT_ERR("*OK\r\n", -EPROTO);
	EXPECT_ERR("* 5\r\n", -EPROTO);
	EXPECT_ERR("* 5 \r\n", -EPROTO);
	EXPECT_ERR("* 4294967296 EXISTS\r\n", -EPROTO);
	EXPECT_ERR("* (LIST)\r\n", -EPROTO);
	EXPECT_ERR("* LIST (\r\n", -EPROTO);
	EXPECT_ERR("* LIST )\r\n", -EPROTO);
	EXPECT_ERR("* LIST a(b)\r\n", -EPROTO);
	EXPECT_ERR("* LIST (a)(b)\r\n", -EPROTO);
	EXPECT_ERR("* LIST {abc}\r\n", -EPROTO);
	EXPECT_ERR("* LIST {3}x\r\n", -EPROTO);
	EXPECT_ERR("* LIST a{3}\r\n", -EPROTO);
	EXPECT_ERR("* LIST {3}\r\nabc{3}\r\nabc\r\n", -EPROTO);
	EXPECT_ERR("* LIST BODY[1\r\n", -EPROTO);
	EXPECT_ERR("* LIST a\x01\r\n", -EPROTO);
	EXPECT_ERR("* OK [] x\r\n", -EPROTO);
	EXPECT_ERR("* OK [A(] x\r\n", -EPROTO);
	EXPECT_ERR("* OK [CAPABILITY (a] x\r\n", -EPROTO);
	EXPECT_ERR("* OK [UIDNEXT \"1] x\r\n", -EPROTO);
	EXPECT_ERR("+\x01\r\n", -EPROTO);
}

static void
test_error_text_escaped(void **state)
{
	const struct imap_response *r;
	const char *e;
	struct fix f;

	fix_init(&f, NULL, false);
	assert_int_equal(FEED(&f, "* 1 EXISTS\r\n", &r), 1);
	assert_int_equal(FEED(&f, "* LIST \"\x1b[31m\\q\"\r\n", &r), -EPROTO);
	e = imap_parser_error(f.p);
	assert_non_null(strstr(e, "invalid escape"));
	assert_non_null(strstr(e, "response 2"));
	assert_non_null(strstr(e, "\\x1b[31m"));
	assert_null(strchr(e, '\x1b'));
	fix_done(&f);
}

static void
test_value_helpers(void **state)
{
	struct imap_value v = { .type = IMAP_V_ATOM, .str = "0042", .len = 4 };
	uint32_t u;
	uint64_t u64;

	assert_int_equal(imap_value_u32(&v, &u), 0);
	assert_int_equal(u, 42);
	v.str = "4294967296";
	v.len = 10;
	assert_int_equal(imap_value_u32(&v, &u), -EINVAL);
	assert_int_equal(imap_value_u64(&v, &u64), 0);
	assert_int_equal(u64, 4294967296ULL);
	v.str = "";
	v.len = 0;
	assert_int_equal(imap_value_u64(&v, &u64), -EINVAL);
	v.type = IMAP_V_STRING;
	v.str = "12";
	v.len = 2;
	assert_int_equal(imap_value_u32(&v, &u), -EINVAL);
	assert_true(imap_value_is(&v, "12"));
	v.str = "Inbox\0x";
	v.len = 7;
	assert_false(imap_value_is(&v, "INBOX"));
	v.len = 5;
	assert_true(imap_value_is(&v, "INBOX"));
	v.type = IMAP_V_NIL;
	assert_false(imap_value_is(&v, "INBOX"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tagged),
		cmocka_unit_test(test_status_codes),
		cmocka_unit_test(test_alert_raw_text),
		cmocka_unit_test(test_data_responses),
		cmocka_unit_test(test_fetch_values),
		cmocka_unit_test(test_continuation),
		cmocka_unit_test(test_literal_bytes_inline),
		cmocka_unit_test(test_literal_streamed),
		cmocka_unit_test(test_literal_section_hint),
		cmocka_unit_test(test_literal_zero_and_plus),
		cmocka_unit_test(test_literal_callback_errors),
		cmocka_unit_test(test_inline_literal_limit),
		cmocka_unit_test(test_literal_sizes),
		cmocka_unit_test(test_max_line),
		cmocka_unit_test(test_max_depth),
		cmocka_unit_test(test_max_items),
		cmocka_unit_test(test_tag_length),
		cmocka_unit_test(test_line_bytes),
		cmocka_unit_test(test_quoted_errors),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_error_text_escaped),
		cmocka_unit_test(test_value_helpers),
		cmocka_unit_test(test_splits_session),
		cmocka_unit_test(test_splits_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
