/*
 * imap_list.c - the folder list of an IMAP session: LIST entries (names
 * decoded from modified UTF-7, or kept as raw bytes when they are not),
 * their limits, names made unique for the index, and the profile's choice
 * of folders before the walk in imap_fetch.c starts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "base/util.h"
#include "imap/imap_client_private.h"

/* More folders than this is a broken or hostile server. */
#define IMAP_MAX_FOLDERS	100000
#define IMAP_MAX_FOLDER_NAME	1000

/* Like str_escape(), and 8-bit bytes too: the result is ASCII. */
static void
imap_escape_name(char *dst, size_t size, const char *src, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, o = 0;

	for (i = 0; i < len && o + 5 < size; i++) {
		unsigned char b = (unsigned char)src[i];

		if (b == '\\') {
			dst[o++] = '\\';
			dst[o++] = '\\';
		} else if (b < 0x20 || b >= 0x7f) {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[b >> 4];
			dst[o++] = hex[b & 0xf];
		} else {
			dst[o++] = (char)b;
		}
	}
	dst[o] = '\0';
}

static int
imap_folder_cmp(const void *a, const void *b)
{
	const struct imap_folder *x = *(const struct imap_folder *const *)a;
	const struct imap_folder *y = *(const struct imap_folder *const *)b;
	int r = strcmp(x->name, y->name);

	/* Among equal names, a decoded one sorts before a raw-named one. */
	return r != 0 ? r : (int)x->raw_named - (int)y->raw_named;
}

/* Folders ordered by name; NULL when out of memory. */
static struct imap_folder **
imap_folders_sorted(struct imap_client *c)
{
	struct imap_folder **ix;
	size_t i;

	if ((ix = calloc(c->n_folders, sizeof *ix)) == NULL)
		return NULL;
	for (i = 0; i < c->n_folders; i++)
		ix[i] = &c->folders[i];
	qsort(ix, c->n_folders, sizeof *ix, imap_folder_cmp);
	return ix;
}

/* "<name> (raw 2661...)": the server's raw names are unique, so this is. */
static int
imap_folder_rename_raw(struct imap_folder *f)
{
	char text[IMAP_MAX_FOLDER_NAME * 6 + 16];
	size_t i, o;

	o = (size_t)snprintf(text, sizeof text, "%s (raw ", f->name);
	for (i = 0; i < f->raw_len && o + 4 < sizeof text; i++)
		o += (size_t)snprintf(text + o, sizeof text - o, "%02x",
		    (unsigned char)f->raw[i]);
	snprintf(text + o, sizeof text - o, ")");
	free(f->name);
	return (f->name = strdup(text)) == NULL ? -ENOMEM : 0;
}

/*
 * The index knows a folder by its name, so two folders may never share
 * one: a raw-named folder whose escaped name equals another's would take
 * over its state and be skipped as unchanged.  Pass one gives such a
 * folder its raw bytes in hex; pass two drops whatever still collides
 * (the same raw name listed twice, or a name forged to match), loudly.
 * Two sorts in all, whatever the server lists.
 */
static int
imap_folders_unique(struct imap_client *c)
{
	char text[IMAP_MAX_FOLDER_NAME * 6 + 200];
	struct imap_folder **ix;
	size_t i;
	int pass;

	if (c->n_folders < 2)
		return 0;
	for (pass = 0; pass < 2; pass++) {
		struct imap_folder *kept = NULL;

		if ((ix = imap_folders_sorted(c)) == NULL)
			return -ENOMEM;
		/* Against the last folder kept, not the previous one: a name
		 * listed three times must lose two. */
		for (i = 0; i < c->n_folders; i++) {
			struct imap_folder *f = ix[i];

			if (f->dropped)
				continue;
			if (kept == NULL || strcmp(f->name, kept->name) != 0) {
				kept = f;
				continue;
			}
			if (pass == 0 && f->raw_named) {
				if (imap_folder_rename_raw(f) < 0) {
					free(ix);
					return -ENOMEM;
				}
				continue;
			}
			f->dropped = true;
			snprintf(text, sizeof text, "two folders on the server "
			    "map to the name \"%s\"; the second is not "
			    "archived: rename it on the server", f->name);
			c->ops->event(c->arg, LOG_LVL_ERR, NULL, text);
		}
		free(ix);
	}
	return 0;
}

static int
imap_folder_add(struct imap_client *c, const char *raw, size_t len, char delim)
{
	struct imap_folder *f;
	char *name;

	if (c->n_folders == c->cap_folders) {
		size_t cap = c->cap_folders ? c->cap_folders * 2 : 16;

		f = reallocarray(c->folders, cap, sizeof *f);
		if (f == NULL)
			return -ENOMEM;
		c->folders = f;
		c->cap_folders = cap;
	}
	if (len == 5 && strncasecmp(raw, "INBOX", 5) == 0)
		raw = "INBOX";
	f = &c->folders[c->n_folders];
	memset(f, 0, sizeof *f);
	if (imap_mutf7_decode(raw, len, &name) < 0) {
		char esc[IMAP_MAX_FOLDER_NAME * 4 + 1], text[sizeof esc + 128];

		/* Keep the server's spelling, as printable ASCII. */
		imap_escape_name(esc, sizeof esc, raw, len);
		f->raw_named = true;
		snprintf(text, sizeof text, "folder name \"%s\" is not valid "
		    "modified UTF-7; it is archived under its raw name", esc);
		c->ops->event(c->arg, LOG_LVL_WARN, NULL, text);
		if ((name = strdup(esc)) == NULL)
			return -ENOMEM;
	}
	f->name = name;
	f->raw = malloc(len + 1);
	if (f->raw == NULL) {
		free(name);
		return -ENOMEM;
	}
	memcpy(f->raw, raw, len);
	f->raw[len] = '\0';
	f->raw_len = len;
	f->delim = delim;
	c->n_folders++;
	return 0;
}

static bool
imap_flags_have(const struct imap_value *flags, const char *flag)
{
	size_t i;

	for (i = 0; i < flags->n_items; i++)
		if (imap_value_is(&flags->items[i], flag))
			return true;
	return false;
}

/*
 * A name we cannot send back safely (NUL, CR, LF, empty or over
 * IMAP_MAX_FOLDER_NAME bytes) cannot be opened.  Its mail is not
 * archived, so a folder the profile wants is an error of the run, never
 * a silent skip; one it does not want is only mentioned.
 */
static void
imap_list_unusable(struct imap_client *c, const struct imap_value *nv,
    char delim)
{
	char *full, esc[128], text[384];
	bool wanted = true, cut;

	/*
	 * The profile's patterns judge the whole name (escaped, as \xNN
	 * takes four bytes per byte): a name cut short could match other
	 * patterns.  Without memory it counts as wanted, so it is reported
	 * as an error rather than skipped quietly; so does an empty name,
	 * which no pattern can judge.
	 */
	if ((full = malloc(nv->len * 4 + 1)) != NULL) {
		str_escape(full, nv->len * 4 + 1, nv->str, nv->len);
		if (nv->len > 0)
			wanted = c->ops->want_folder(c->arg, full, delim);
	}
	str_escape(esc, sizeof esc, nv->str, nv->len);
	cut = full == NULL || strlen(full) > strlen(esc);
	free(full);
	snprintf(text, sizeof text, "folder \"%s\"%s (%zu bytes) has a name "
	    "that cannot be opened safely (empty, NUL, CR or LF, or over %d "
	    "bytes); %s", esc, cut ? "..." : "", nv->len,
	    IMAP_MAX_FOLDER_NAME, wanted ?
	    "its messages are NOT archived: rename it on the server" :
	    "skipped (not selected by this profile)");
	c->ops->event(c->arg, wanted ? LOG_LVL_ERR : LOG_LVL_INFO, NULL, text);
}

/* "* LIST (\HasNoChildren) "/" Sent" */
void
imap_list_entry(struct imap_client *c, const struct imap_response *r)
{
	const struct imap_value *flags, *dv, *nv;
	char delim = 0;

	if (r->n_args != 3 || r->args[0].type != IMAP_V_LIST ||
	    (r->args[2].type != IMAP_V_ATOM && r->args[2].type != IMAP_V_STRING)) {
		imap_fail(c, SESSION_FAIL_PROTOCOL, "%s sent a malformed LIST "
		    "response", net_peer(c->conn));
		return;
	}
	flags = &r->args[0];
	dv = &r->args[1];
	nv = &r->args[2];
	if (dv->type == IMAP_V_STRING && dv->len == 1)
		delim = dv->str[0];
	if (imap_flags_have(flags, "\\Noselect") ||
	    imap_flags_have(flags, "\\NonExistent"))
		return;
	if (nv->len == 0 || nv->len > IMAP_MAX_FOLDER_NAME ||
	    memchr(nv->str, '\0', nv->len) != NULL ||
	    memchr(nv->str, '\r', nv->len) != NULL ||
	    memchr(nv->str, '\n', nv->len) != NULL) {
		imap_list_unusable(c, nv, delim);
		return;
	}
	if (c->n_folders >= IMAP_MAX_FOLDERS) {
		imap_fail(c, SESSION_FAIL_PROTOCOL, "%s lists more than %d "
		    "folders", net_peer(c->conn), IMAP_MAX_FOLDERS);
		return;
	}
	if (imap_folder_add(c, nv->str, nv->len, delim) < 0)
		imap_fail(c, SESSION_FAIL_LOCAL, "out of memory");
}

/* Drop folders the profile does not want, keeping the server's order. */
void
imap_list_done(struct imap_client *c, const struct imap_response *r)
{
	char words[512];
	size_t i, k = 0;

	if (r->status != IMAP_ST_OK) {
		imap_server_words(r, words, sizeof words);
		imap_fail(c, SESSION_FAIL_PROTOCOL, "%s refused LIST: %s",
		    net_peer(c->conn), words);
		return;
	}
	if (imap_folders_unique(c) < 0) {
		imap_fail(c, SESSION_FAIL_LOCAL, "out of memory");
		return;
	}
	for (i = 0; i < c->n_folders; i++) {
		struct imap_folder *f = &c->folders[i];

		if (!f->dropped &&
		    c->ops->want_folder(c->arg, f->name, f->delim)) {
			c->folders[k++] = *f;
		} else {
			free(f->name);
			free(f->raw);
		}
	}
	c->n_folders = k;
	c->cur = 0;
	imap_walk_next_folder(c);
}

void
imap_list_free(struct imap_client *c)
{
	size_t i;

	for (i = 0; i < c->n_folders; i++) {
		free(c->folders[i].name);
		free(c->folders[i].raw);
	}
	free(c->folders);
	c->folders = NULL;
	c->n_folders = c->cap_folders = 0;
}
