/*
 * link_rule.c - follows a chain of symlinks by hand, lstat() and
 * readlink() per hop, so that the owner of every link is seen before
 * anything behind it is opened.  open() alone would check none of them.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "link_rule.h"

/* `target` read from the link `cur`: relative targets are relative to
 * the link's directory. */
static int
link_rule_next(char *cur, size_t len, const char *target)
{
	char dir[PATH_MAX];
	const char *slash;
	int n;

	if (target[0] == '/' || (slash = strrchr(cur, '/')) == NULL)
		n = snprintf(dir, sizeof dir, "%s", target);
	else
		n = snprintf(dir, sizeof dir, "%.*s/%s", (int)(slash - cur),
		    cur, target);
	if (n < 0 || (size_t)n >= sizeof dir || (size_t)n >= len)
		return -ENAMETOOLONG;
	memcpy(cur, dir, (size_t)n + 1);
	return 0;
}

int
link_rule_walk(const char *path, char *out, size_t outlen,
    struct link_rule_bad *bad)
{
	char target[PATH_MAX];
	struct stat lst;
	ssize_t n;
	int hops, r;

	bad->link[0] = '\0';
	if (strlen(path) >= outlen)
		return -ENAMETOOLONG;
	memmove(out, path, strlen(path) + 1);
	for (hops = 0;; hops++) {
		if (lstat(out, &lst) < 0)
			return -errno;
		if (!S_ISLNK(lst.st_mode))
			return 0;
		if (hops == LINK_RULE_HOPS)
			return -ELOOP;
		if (lst.st_uid != 0 && lst.st_uid != geteuid()) {
			snprintf(bad->link, sizeof bad->link, "%s", out);
			bad->uid = lst.st_uid;
			return -EPERM;
		}
		if ((n = readlink(out, target, sizeof target - 1)) < 0)
			return -errno;
		target[n] = '\0';
		if ((r = link_rule_next(out, outlen, target)) < 0)
			return r;
	}
}

void
link_rule_explain(const struct link_rule_bad *bad, const char *path,
    const char *what, char *buf, size_t len)
{
	bool first = strcmp(bad->link, path) == 0;

	snprintf(buf, len, "%.400s: %s%.400s%sa symlink owned by uid %u, "
	    "neither root nor us (uid %u), so it is not followed; replace %s "
	    "with the %s itself", path, first ? "" : "reached through ",
	    first ? "" : bad->link, first ? "" : ", ", (unsigned)bad->uid,
	    (unsigned)geteuid(), first ? "it" : "that link", what);
}

int
link_rule_open(const char *path, int flags, struct link_rule_bad *bad)
{
	char real[PATH_MAX];
	int fd, r;

	if ((r = link_rule_walk(path, real, sizeof real, bad)) < 0)
		return r;
	if ((fd = open(real, flags | O_NOFOLLOW)) < 0)
		return -errno;
	return fd;
}
