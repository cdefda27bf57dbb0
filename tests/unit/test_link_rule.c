/*
 * test_link_rule.c - the symlink rule along a whole chain: links we own
 * are followed (absolute and relative targets), a link of someone else
 * anywhere on the way stops the walk and is named, loops and over-long
 * chains end.  Giving a link away needs root (lchown); those cases skip
 * otherwise.
 */
#include <sys/stat.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/link_rule.h"

#define NOBODY	65534

static char dir[64];

static int
setup(void **state)
{
	char p[128];
	int fd;

	strcpy(dir, "/tmp/mailstow-linkrule-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(p, sizeof p, "%s/file", dir);
	assert_true((fd = open(p, O_WRONLY | O_CREAT, 0600)) >= 0);
	assert_int_equal(write(fd, "x", 1), 1);
	close(fd);
	snprintf(p, sizeof p, "%s/sub", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static const char *
at(const char *name)
{
	static char buf[4][128];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
	return buf[i];
}

static void
link_to(const char *target, const char *name)
{
	assert_int_equal(symlink(target, at(name)), 0);
}

static void
test_plain_and_own_links(void **state)
{
	struct link_rule_bad bad;
	char out[PATH_MAX];
	int fd;

	assert_int_equal(link_rule_walk(at("file"), out, sizeof out, &bad), 0);
	assert_string_equal(out, at("file"));
	link_to(at("file"), "abs");
	link_to("../file", "sub/rel");
	link_to("sub/rel", "chain");
	assert_int_equal(link_rule_walk(at("abs"), out, sizeof out, &bad), 0);
	assert_string_equal(out, at("file"));
	assert_int_equal(link_rule_walk(at("chain"), out, sizeof out, &bad), 0);
	assert_string_equal(out, at("sub/../file"));
	assert_true((fd = link_rule_open(at("chain"), O_RDONLY, &bad)) >= 0);
	close(fd);
	assert_string_equal(bad.link, "");
	assert_int_equal(link_rule_open(at("nope"), O_RDONLY, &bad), -ENOENT);
	link_to(at("gone"), "dangling");
	assert_int_equal(link_rule_open(at("dangling"), O_RDONLY, &bad),
	    -ENOENT);
	assert_string_equal(bad.link, "");
}

static void
test_foreign_link_anywhere(void **state)
{
	struct link_rule_bad bad;
	char out[PATH_MAX], why[1024], want[512];

	if (geteuid() != 0)
		skip();
	link_to(at("file"), "theirs");
	link_to(at("theirs"), "ours");
	assert_int_equal(lchown(at("theirs"), NOBODY, NOBODY), 0);
	/* The first link is ours; the second, not: stop there. */
	assert_int_equal(link_rule_walk(at("ours"), out, sizeof out, &bad),
	    -EPERM);
	assert_string_equal(bad.link, at("theirs"));
	assert_int_equal(bad.uid, NOBODY);
	assert_int_equal(link_rule_open(at("ours"), O_RDONLY, &bad), -EPERM);
	link_rule_explain(&bad, at("ours"), "file", why, sizeof why);
	snprintf(want, sizeof want, "%s: reached through %s, a symlink owned "
	    "by uid %d, neither root nor us", at("ours"), at("theirs"), NOBODY);
	assert_memory_equal(why, want, strlen(want));
	assert_non_null(strstr(why, "replace that link with the file itself"));
	assert_int_equal(link_rule_open(at("theirs"), O_RDONLY, &bad), -EPERM);
	assert_string_equal(bad.link, at("theirs"));
	link_rule_explain(&bad, at("theirs"), "directory", why, sizeof why);
	snprintf(want, sizeof want, "%s: a symlink owned by uid %d",
	    at("theirs"), NOBODY);
	assert_memory_equal(why, want, strlen(want));
	assert_non_null(strstr(why, "replace it with the directory itself"));
	/* A file (not a link) someone else owns is no business of this rule. */
	assert_int_equal(chown(at("file"), NOBODY, NOBODY), 0);
	assert_int_equal(link_rule_walk(at("file"), out, sizeof out, &bad), 0);
}

static void
test_loops_and_long_chains(void **state)
{
	struct link_rule_bad bad;
	char out[PATH_MAX], name[16], prev[16];
	int i;

	link_to(at("b"), "a");
	link_to(at("a"), "b");
	assert_int_equal(link_rule_walk(at("a"), out, sizeof out, &bad),
	    -ELOOP);
	/* LINK_RULE_HOPS links are followed; one more is a loop. */
	snprintf(prev, sizeof prev, "file");
	for (i = 0; i <= LINK_RULE_HOPS; i++) {
		snprintf(name, sizeof name, "l%d", i);
		link_to(prev, name);
		snprintf(prev, sizeof prev, "%s", name);
	}
	snprintf(name, sizeof name, "l%d", LINK_RULE_HOPS - 1);
	assert_int_equal(link_rule_walk(at(name), out, sizeof out, &bad), 0);
	snprintf(name, sizeof name, "l%d", LINK_RULE_HOPS);
	assert_int_equal(link_rule_walk(at(name), out, sizeof out, &bad),
	    -ELOOP);
	/* Too small a buffer for the path. */
	assert_int_equal(link_rule_walk(at("file"), out, 4, &bad),
	    -ENAMETOOLONG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_plain_and_own_links,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreign_link_anywhere,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_loops_and_long_chains,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
