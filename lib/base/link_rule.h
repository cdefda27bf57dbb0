/*
 * link_rule.h - the symlink rule for every file that picks what mailstow
 * does (config, conf.d, password and secret files): a link is followed
 * only when root or we own it, since whoever owns a link picks what we
 * read.  Every link of a chain is held to it, not only the first.
 */
#ifndef MAILSTOW_BASE_LINK_RULE_H
#define MAILSTOW_BASE_LINK_RULE_H

#include <sys/types.h>

#include <stddef.h>

#define LINK_RULE_HOPS	16	/* links followed at most; then -ELOOP */

/* Where the rule stopped: the link, and its owner, when -EPERM. */
struct link_rule_bad {
	char	 link[512];
	uid_t	 uid;
};

/*
 * Follow the links of `path`'s last component, each checked, to the
 * path of what they point at, written to `out` (`outlen` bytes; `path`
 * itself when it is no link).  0; -errno from lstat() or readlink();
 * -EPERM with `bad` filled when a link is owned by neither root nor us
 * (bad->link is "" on any other outcome);
 * -ELOOP past LINK_RULE_HOPS; -ENAMETOOLONG.
 */
int	link_rule_walk(const char *path, char *out, size_t outlen,
	    struct link_rule_bad *bad);

/*
 * link_rule_walk(), then open what it found with `flags` | O_NOFOLLOW,
 * so that a link put in its place after the walk is refused (-ELOOP).
 * The descriptor, or -errno as link_rule_walk() and open() give it.
 */
int	link_rule_open(const char *path, int flags, struct link_rule_bad *bad);

/*
 * The sentence for a refusal, into `buf`: "PATH: a symlink owned by uid
 * U, neither root nor us ..., so it is not followed; replace it with the
 * WHAT itself", or, for a link further down the chain, "PATH: reached
 * through LINK, a symlink owned by ...; replace that link ...".  `what`
 * is "file" or "directory".
 */
void	link_rule_explain(const struct link_rule_bad *bad, const char *path,
	    const char *what, char *buf, size_t len);

#endif
