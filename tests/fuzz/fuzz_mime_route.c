/*
 * fuzz_mime_route.c - libFuzzer target for multidrop routing with a fixed
 * configuration: whatever the header, it never fails, every user is a
 * rule's user, the `unknown` user or a safe name, neither list holds a
 * duplicate, and the address bound holds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mime/mime.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const headers[] = { "Delivered-To", "X-Original-To" };
static const char *const fallback[] = { "To", "Cc", "Bcc", "Resent-To" };
static const char *const domains[] = { "example.com", "b" };
static const struct mime_route_rule rules[] = {
	{ "sales-*@example.com", "sales" },
	{ "*@s*.org", "support" },
	{ "*a*b*c*@*", "abc" },
};

static bool
known_user(const char *u)
{
	size_t n = strlen(u);

	if (strcmp(u, "sales") == 0 || strcmp(u, "support") == 0 ||
	    strcmp(u, "abc") == 0 || strcmp(u, "unknown") == 0)
		return true;
	if (n == 0 || n > 64 || u[0] == '.' || u[0] == '-' ||
	    u[n - 1] == '.' || strstr(u, "..") != NULL)
		return false;
	return strspn(u, "abcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static void
check_distinct(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (strcmp(v[i], v[j]) == 0)
				abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mime_route_conf c = {
		.headers = headers, .n_headers = 2,
		.fallback = fallback, .n_fallback = 4,
		.local_domains = domains, .n_local_domains = 2,
		.rules = rules, .n_rules = 3,
		.strip_detail = '+',
		.unknown = size > 0 && data[0] & 1 ? "unknown" : NULL,
		.use_received = size > 0 && data[0] & 2,
		.max_addresses = 50,
		.max_fields = 100,
	};
	struct mime_route_result r;

	if (mime_route(&c, (const char *)data, size, &r) != 0)
		abort();
	/* Users: at most one per address, plus `unknown`. */
	if (r.n_users > 51 || r.n_unknown > 50)
		abort();
	if (r.n_users == 0 && c.unknown != NULL)
		abort();
	for (size_t i = 0; i < r.n_users; i++)
		if (!known_user(r.users[i]))
			abort();
	if (r.n_unknown > 0 && c.unknown != NULL) {
		size_t i;

		for (i = 0; i < r.n_users; i++)
			if (strcmp(r.users[i], "unknown") == 0)
				break;
		if (i == r.n_users)
			abort();
	}
	check_distinct(r.users, r.n_users);
	check_distinct(r.unknown, r.n_unknown);
	mime_route_result_free(&r);
	return 0;
}
