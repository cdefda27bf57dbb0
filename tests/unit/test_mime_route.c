/*
 * test_mime_route.c - multidrop routing by header: a catch-all copy with
 * several Delivered-To fields, Bcc-only recipients, detail addresses,
 * glob rules before local domains, strangers to `unknown` or skipped,
 * the fallback fields and Received "for", case, duplicates, unsafe local
 * parts, and the bounds on fields and addresses.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mime/mime.h"

static const char *const headers[] = {
	"Delivered-To", "X-Original-To", "X-Envelope-To", "Envelope-To",
};
static const char *const fallback[] = {
	"To", "Cc", "Bcc", "Resent-To", "Resent-Cc",
};
static const char *const domains[] = { "example.com", "Example.ORG" };
static const struct mime_route_rule rules[] = {
	{ "sales-vip@example.com", "vip" },
	{ "sales-*@example.com", "sales" },
	{ "*@support.example.org", "support" },
	{ "BOSS@Example.com", "ceo" },
};

static struct mime_route_conf
conf_default(void)
{
	struct mime_route_conf c = {
		.headers = headers,
		.n_headers = sizeof headers / sizeof *headers,
		.fallback = fallback,
		.n_fallback = sizeof fallback / sizeof *fallback,
		.local_domains = domains,
		.n_local_domains = sizeof domains / sizeof *domains,
		.rules = rules,
		.n_rules = sizeof rules / sizeof *rules,
		.strip_detail = '+',
		.unknown = "catchall-unknown",
		.use_received = false,
		.max_addresses = 10000,
		.max_fields = 1000,
	};

	return c;
}

/* "a,b,c" against a list of strings, in order; "" for none. */
static void
check_list(char **got, size_t n, const char *want, const char *what)
{
	char buf[4096];
	size_t i, o = 0;

	buf[0] = '\0';
	for (i = 0; i < n; i++)
		o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%s",
		    i ? "," : "", got[i]);
	if (strcmp(buf, want) != 0)
		fail_msg("%s: got \"%s\", want \"%s\"", what, buf, want);
}

static void
route_check(const struct mime_route_conf *c, const char *hdr,
    const char *users, const char *unknown)
{
	struct mime_route_result r;

	memset(&r, 0xa5, sizeof r);	/* must all be written */
	assert_int_equal(mime_route(c, hdr, strlen(hdr), &r), 0);
	check_list(r.users, r.n_users, users, "users");
	check_list(r.unknown, r.n_unknown, unknown, "unknown");
	mime_route_result_free(&r);
	assert_int_equal(r.n_users, 0);
	assert_null(r.users);
}

static void
test_catch_all(void **state)
{
	struct mime_route_conf c = conf_default();

	(void)state;
	/* One copy for several local recipients: every Delivered-To. */
	route_check(&c,
	    "Return-Path: <s@elsewhere.net>\r\n"
	    "Delivered-To: alice@example.com\r\n"
	    "Received: from x by y for <zed@example.com>; date\r\n"
	    "Delivered-To: bob@example.com\r\n"
	    "From: s@elsewhere.net\r\n"
	    "To: alice@example.com, carol@example.com\r\n"
	    "X-Original-To: dave@example.com\r\n"
	    "\r\n"
	    "Delivered-To: body@example.com\r\n",
	    "alice,bob", "");
	/* Bcc: the recipient is only in the envelope field. */
	route_check(&c,
	    "Delivered-To: dave@example.com\r\n"
	    "To: alice@example.com\r\n"
	    "Cc: bob@example.com\r\n\r\n", "dave", "");
	/* Folded and LF-only header. */
	route_check(&c,
	    "Subject: x\n"
	    "Delivered-To:\n"
	    "  Erin <erin@example.com>\n"
	    "\n", "erin", "");
}

static void
test_header_order(void **state)
{
	struct mime_route_conf c = conf_default();

	(void)state;
	/* The first name in `headers` that is present wins... */
	route_check(&c,
	    "Envelope-To: env@example.com\r\n"
	    "X-Original-To: orig@example.com\r\n"
	    "To: alice@example.com\r\n\r\n", "orig", "");
	/* ...all its instances, not the later names. */
	route_check(&c,
	    "X-Envelope-To: a@example.com\r\n"
	    "Envelope-To: e@example.com\r\n"
	    "X-Envelope-To: b@example.com\r\n\r\n", "a,b", "");
	/* A present field without any address does not stop the search. */
	route_check(&c,
	    "Delivered-To: \r\n"
	    "Delivered-To: undisclosed-recipients:;\r\n"
	    "X-Original-To: orig@example.com\r\n"
	    "To: alice@example.com\r\n\r\n", "orig", "");
}

static void
test_detail(void **state)
{
	struct mime_route_conf c = conf_default();

	(void)state;
	route_check(&c,
	    "Delivered-To: alice+news@example.com\r\n"
	    "Delivered-To: bob+a+b@example.org\r\n"
	    "Delivered-To: \"carol+x y\"@example.com\r\n\r\n",
	    "alice,bob,carol", "");
	/* A detail mark in the first place is no detail. */
	route_check(&c, "Delivered-To: +news@example.com\r\n\r\n",
	    "catchall-unknown", "+news@example.com");
	static const struct mime_route_rule news[] = {
		{ "+news@example.com", "news" },
	};
	c.rules = news;
	c.n_rules = 1;
	route_check(&c, "Delivered-To: +news+x@example.com\r\n\r\n",
	    "catchall-unknown", "+news+x@example.com");
	route_check(&c, "Delivered-To: +news@example.com\r\n\r\n", "news",
	    "");
	c.n_rules = 0;
	/* The unknown list keeps the address as it came. */
	route_check(&c, "Delivered-To: x+y@elsewhere.net\r\n\r\n",
	    "catchall-unknown", "x+y@elsewhere.net");
	/* Other marks, or none. */
	c.strip_detail = '-';
	route_check(&c, "Delivered-To: alice-news@example.com\r\n\r\n",
	    "alice", "");
	c.strip_detail = '\0';
	route_check(&c, "Delivered-To: alice+news@example.com\r\n\r\n",
	    "catchall-unknown", "alice+news@example.com");
	route_check(&c, "Delivered-To: alice-news@example.com\r\n\r\n",
	    "alice-news", "");
}

static void
test_rules(void **state)
{
	struct mime_route_conf c = conf_default();

	(void)state;
	/* Rules win over local domains, the first match wins, case and
	 * detail do not matter, '*' spans any text. */
	route_check(&c,
	    "Delivered-To: sales-eu@example.com\r\n"
	    "Delivered-To: Sales-VIP+x@Example.COM\r\n"
	    "Delivered-To: help@support.example.org\r\n"
	    "Delivered-To: a.b@Support.Example.Org\r\n"
	    "Delivered-To: boss@example.com\r\n"
	    "Delivered-To: sales-@example.com\r\n"
	    "Delivered-To: sales@example.com\r\n\r\n",
	    "sales,vip,support,ceo", "");
	/* Without the rules the same addresses are local or strangers. */
	c.n_rules = 0;
	route_check(&c,
	    "Delivered-To: sales-eu@example.com, help@support.example.org,"
	    " boss@example.com\r\n\r\n",
	    "sales-eu,catchall-unknown,boss", "help@support.example.org");
	/* The pattern covers the whole address. */
	static const struct mime_route_rule partial[] = {
		{ "sales@example", "wrong" }, { "*example.co", "wrong" },
		{ "*x*@*.net", "x-net" }, { "**@**", "all" },
	};
	c.rules = partial;
	c.n_rules = sizeof partial / sizeof *partial;
	route_check(&c,
	    "To: sales@example.com, mix@b.net, other@elsewhere.org\r\n\r\n",
	    "all,x-net", "");
}

static void
test_strangers(void **state)
{
	struct mime_route_conf c = conf_default();

	(void)state;
	route_check(&c,
	    "To: Stranger <stranger@elsewhere.net>, alice@example.com, "
	    "other@example.net, stranger@ELSEWHERE.net\r\n\r\n",
	    "catchall-unknown,alice",
	    "stranger@elsewhere.net,other@example.net");
	/* "skip": strangers route to nobody, but are still listed. */
	c.unknown = NULL;
	route_check(&c,
	    "To: stranger@elsewhere.net, alice@example.com\r\n\r\n",
	    "alice", "stranger@elsewhere.net");
	route_check(&c, "To: stranger@elsewhere.net\r\n\r\n", "",
	    "stranger@elsewhere.net");
	/* A subdomain of a local domain is not local. */
	route_check(&c, "To: a@sub.example.com, b@example.com.evil, "
	    "c@example.co, d@xample.com\r\n\r\n", "",
	    "a@sub.example.com,b@example.com.evil,c@example.co,d@xample.com");
}

static void
test_no_addresses(void **state)
{
	struct mime_route_conf c = conf_default();

	(void)state;
	route_check(&c, "Subject: nothing\r\n\r\n", "catchall-unknown", "");
	route_check(&c, "To: undisclosed-recipients:;\r\n\r\n",
	    "catchall-unknown", "");
	route_check(&c, "", "catchall-unknown", "");
	route_check(&c, "\r\nTo: alice@example.com\r\n", "catchall-unknown",
	    "");
	/* From is no recipient field. */
	route_check(&c, "From: alice@example.com\r\n\r\n", "catchall-unknown",
	    "");
	c.unknown = NULL;
	route_check(&c, "Subject: nothing\r\n\r\n", "", "");
}

static void
test_fallback(void **state)
{
	struct mime_route_conf c = conf_default();

	(void)state;
	route_check(&c,
	    "From: zed@example.com\r\n"
	    "To: alice@example.com\r\n"
	    "Subject: x\r\n"
	    "Cc: Bob <bob@example.com>\r\n"
	    "Bcc: carol@example.com\r\n"
	    "Resent-To: dave@example.com\r\n"
	    "Resent-Cc: erin@example.com\r\n"
	    "Reply-To: frank@example.com\r\n"
	    "To: alice@example.com, gina@example.com\r\n\r\n",
	    "alice,bob,carol,dave,erin,gina", "");
	/* No envelope names configured: straight to the fallback. */
	c.n_headers = 0;
	route_check(&c,
	    "Delivered-To: alice@example.com\r\nCc: bob@example.com\r\n\r\n",
	    "bob", "");
	/* No fallback either: nothing is known. */
	c.n_fallback = 0;
	route_check(&c, "Cc: bob@example.com\r\n\r\n", "catchall-unknown",
	    "");
}

static void
test_received(void **state)
{
	struct mime_route_conf c = conf_default();
	const char *hdr =
	    "Received: from a by b with ESMTP id 1\r\n"
	    "\tfor <erin@example.com>; Tue, 25 Nov 2025 10:00:00 +0000\r\n"
	    "Received: from c by d; Tue, 25 Nov 2025 09:59:00 +0000\r\n"
	    "Received: from e by f id 2 for frank+x@example.com; date\r\n"
	    "To: alice@example.com\r\n\r\n";

	(void)state;
	route_check(&c, hdr, "alice", "");
	c.use_received = true;
	route_check(&c, hdr, "erin,frank", "");
	/* The configured headers still come first. */
	route_check(&c, "Delivered-To: bob@example.com\r\n"
	    "Received: by x for <erin@example.com>; date\r\n\r\n", "bob", "");
	/* Received fields without "for": the fallback. */
	route_check(&c, "Received: from c by d; date\r\n"
	    "Received: from x by y (for <z@example.com>); date\r\n"
	    "Cc: bob@example.com\r\n\r\n", "bob", "");
}

static void
test_case(void **state)
{
	struct mime_route_conf c = conf_default();
	static const char *const lower_names[] = { "delivered-to" };

	(void)state;
	route_check(&c,
	    "DELIVERED-TO: ALICE@EXAMPLE.COM\r\n"
	    "delivered-to: Bob@Example.Org\r\n"
	    "Delivered-To : carol@EXAMPLE.org\r\n\r\n",
	    "alice,bob,carol", "");
	c.headers = lower_names;
	c.n_headers = 1;
	route_check(&c, "Delivered-To: Dave@example.COM\r\n\r\n", "dave", "");
}

static void
test_duplicates(void **state)
{
	struct mime_route_conf c = conf_default();

	(void)state;
	/* The same person by several spellings routes once; so does
	 * `unknown`, and each stranger is listed once. */
	route_check(&c,
	    "To: alice@example.com, Alice <ALICE@example.com>\r\n"
	    "Cc: alice+x@example.com, \"alice\"@example.com, "
	    "alice (again) @ example . com\r\n"
	    "Bcc: s@elsewhere.net, t@elsewhere.net, S@Elsewhere.NET\r\n"
	    "Resent-To: catchall-unknown@example.com\r\n\r\n",
	    "alice,catchall-unknown", "s@elsewhere.net,t@elsewhere.net");
}

static void
test_unsafe_local_parts(void **state)
{
	struct mime_route_conf c = conf_default();
	char hdr[512];

	(void)state;
	c.unknown = NULL;
	route_check(&c,
	    "To: \"a b\"@example.com, x/y@example.com, j\xc3\xb6rg@example.com,"
	    " \"../etc\"@example.com, a..b@example.com, -rf@example.com,"
	    " \"a\\\"b\"@example.com, ~root@example.com, \"\"@example.com,"
	    " \".hidden\"@example.com, a!b@example.com\r\n\r\n", "",
	    "\"a b\"@example.com,x/y@example.com,j\xc3\xb6rg@example.com,"
	    "\"../etc\"@example.com,\"a..b\"@example.com,-rf@example.com,"
	    "\"a\\\"b\"@example.com,~root@example.com,\"\"@example.com,"
	    "\".hidden\"@example.com,a!b@example.com");
	route_check(&c,
	    "To: a.b@example.com, under_score@example.com, x-1@example.com,"
	    " 9@example.com, _@example.com\r\n\r\n",
	    "a.b,under_score,x-1,9,_", "");
	/* 64 bytes is the longest archive user name. */
	snprintf(hdr, sizeof hdr, "To: %064d@example.com, %065d@example.com"
	    "\r\n\r\n", 1, 2);
	route_check(&c, hdr,
	    "0000000000000000000000000000000000000000000000000000000000000001",
	    "00000000000000000000000000000000000000000000000000000000000000002"
	    "@example.com");
	/* A rule may still route such an address. */
	static const struct mime_route_rule r[] = { { "*/*@example.com", "s" } };
	c.rules = r;
	c.n_rules = 1;
	route_check(&c, "To: x/y@example.com\r\n\r\n", "s", "");
}

static void
test_bounds(void **state)
{
	struct mime_route_conf c = conf_default();
	struct mime_route_result r;
	const size_t n = 20000;
	char *hdr, *p;

	(void)state;
	/* 20,000 distinct addresses, 10,000 of them looked at. */
	assert_non_null(hdr = malloc(n * 40 + 64));
	p = hdr + sprintf(hdr, "To: ");
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%su%zu@example.com, s%zu@x.net", i ? ", " : "",
		    i, i);
	p += sprintf(p, "\r\n\r\n");
	assert_int_equal(mime_route(&c, hdr, (size_t)(p - hdr), &r), 0);
	assert_int_equal(r.n_users, 5000 + 1);
	assert_int_equal(r.n_unknown, 5000);
	assert_string_equal(r.users[0], "u0");
	assert_string_equal(r.users[1], "catchall-unknown");
	assert_string_equal(r.users[5000], "u4999");
	assert_string_equal(r.unknown[4999], "s4999@x.net");
	mime_route_result_free(&r);
	/* 0 means the default bound of 10,000 too. */
	c.max_addresses = 0;
	assert_int_equal(mime_route(&c, hdr, (size_t)(p - hdr), &r), 0);
	assert_int_equal(r.n_users + r.n_unknown, 10000 + 1);
	mime_route_result_free(&r);
	c.max_addresses = 3;
	assert_int_equal(mime_route(&c, hdr, (size_t)(p - hdr), &r), 0);
	check_list(r.users, r.n_users, "u0,catchall-unknown,u1", "users");
	mime_route_result_free(&r);
	/* The field bound: a recipient field after 1,000 others is unseen. */
	p = hdr;
	for (size_t i = 0; i < 1000; i++)
		p += sprintf(p, "X-F%05zu: v\r\n", i);
	p += sprintf(p, "To: alice@example.com\r\n\r\n");
	c.max_addresses = 10000;
	assert_int_equal(mime_route(&c, hdr, (size_t)(p - hdr), &r), 0);
	check_list(r.users, r.n_users, "catchall-unknown", "users");
	mime_route_result_free(&r);
	c.max_fields = 1001;
	assert_int_equal(mime_route(&c, hdr, (size_t)(p - hdr), &r), 0);
	check_list(r.users, r.n_users, "alice", "users");
	mime_route_result_free(&r);
	free(hdr);
	mime_route_result_free(NULL);
}

static void
test_huge_field(void **state)
{
	struct mime_route_conf c = conf_default();
	const size_t big = 1024 * 1024;
	char *hdr;
	size_t len;

	(void)state;
	/* A 1 MB Delivered-To of junk, then a good one. */
	assert_non_null(hdr = malloc(big + 128));
	len = (size_t)sprintf(hdr, "Delivered-To: ");
	memset(hdr + len, '(', big);
	len += big;
	len += (size_t)sprintf(hdr + len, "\r\nDelivered-To: bob@example.com"
	    "\r\n\r\n");
	route_check(&c, hdr, "bob", "");
	free(hdr);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_catch_all),
		cmocka_unit_test(test_header_order),
		cmocka_unit_test(test_detail),
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_strangers),
		cmocka_unit_test(test_no_addresses),
		cmocka_unit_test(test_fallback),
		cmocka_unit_test(test_received),
		cmocka_unit_test(test_case),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_unsafe_local_parts),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_huge_field),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
