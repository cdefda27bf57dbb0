/*
 * conf_glob.c - folder selection: IMAP LIST-style patterns ('*' anything,
 * '%' anything but the hierarchy delimiter) matched against whole folder
 * names.  The matcher walks the pattern positions as a set (an NFA), so
 * time is O(name * pattern) whatever the pattern: no backtracking blow-up.
 */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "conf_private.h"

#define CONF_GLOB_MAX	CONF_MAX_STRING	/* longest pattern matched */

/* RFC 3501 5.1: INBOX is case-insensitive, and so is the INBOX in
 * "INBOX/sub"; every other name is compared exactly. */
static bool
conf_glob_inbox(const char *name, char delim)
{
	return strncasecmp(name, "INBOX", 5) == 0 &&
	    (name[5] == '\0' || (delim != '\0' && name[5] == delim));
}

static bool
conf_glob_eq(char p, char c, bool fold)
{
	if (p == c)
		return true;
	if (!fold)
		return false;
	if (p >= 'A' && p <= 'Z')
		p = (char)(p - 'A' + 'a');
	if (c >= 'A' && c <= 'Z')
		c = (char)(c - 'A' + 'a');
	return p == c;
}

/* A wildcard may match nothing: reaching it reaches what follows it. */
static void
conf_glob_close(const char *p, size_t m, unsigned char *set)
{
	size_t i;

	for (i = 0; i < m; i++)
		if (set[i] && (p[i] == '*' || p[i] == '%'))
			set[i + 1] = 1;
}

bool
conf_glob_match(const char *pattern, const char *name, char delim)
{
	unsigned char cur[CONF_GLOB_MAX + 1], next[CONF_GLOB_MAX + 1];
	size_t m, i, pos;
	bool inbox, alive;

	if (pattern == NULL || name == NULL ||
	    (m = strlen(pattern)) > CONF_GLOB_MAX)
		return false;
	inbox = conf_glob_inbox(name, delim);
	memset(cur, 0, m + 1);
	cur[0] = 1;
	conf_glob_close(pattern, m, cur);
	for (pos = 0; name[pos] != '\0'; pos++) {
		char c = name[pos];

		memset(next, 0, m + 1);
		alive = false;
		for (i = 0; i < m; i++) {
			if (!cur[i])
				continue;
			if (pattern[i] == '*' || (pattern[i] == '%' && c != delim))
				next[i] = 1;
			else if (pattern[i] != '%' &&
			    conf_glob_eq(pattern[i], c, inbox && pos < 5))
				next[i + 1] = 1;
			else
				continue;
			alive = true;
		}
		if (!alive)
			return false;
		conf_glob_close(pattern, m, next);
		memcpy(cur, next, m + 1);
	}
	return cur[m] != 0;
}

bool
conf_folder_selected(const struct conf_profile *p, const char *name,
    char delim)
{
	bool in = p->n_folders_include == 0;
	size_t i;

	for (i = 0; !in && i < p->n_folders_include; i++)
		in = conf_glob_match(p->folders_include[i], name, delim);
	for (i = 0; in && i < p->n_folders_exclude; i++)
		if (conf_glob_match(p->folders_exclude[i], name, delim))
			in = false;
	return in;
}
