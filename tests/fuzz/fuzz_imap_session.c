/*
 * fuzz_imap_session.c - the whole IMAP client state machine, not only its
 * parser: the input is what a server sends on a plaintext TCP connection
 * on 127.0.0.1, fed in writes whose boundaries come from its first bytes,
 * then the server half-closes.  The session must end by itself (done()
 * exactly once, before a hard cap), keep the session_ops contract and
 * leave nothing allocated.  The harness is fuzz_session.h; this file has
 * the IMAP client, its params and the UID and folder name checks.
 *
 * Input: byte 0 flags (FZ_F_*, here and in fuzz_session.h), byte 1 split
 * seed, then the server bytes.
 */
#define _GNU_SOURCE	/* accept4() */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "imap/imap_client.h"

#define FZ_NAME	"fuzz_imap_session"
#include "fuzz_session.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_F_SKIP	0x20	/* every other folder_open says "unchanged" */
#define FZ_F_NARROW	0x80	/* one UID per FETCH, one FETCH in flight */

#define FZ_MAX_UIDS	4096		/* delivered UIDs remembered per folder */
#define FZ_MAX_NAMES	256

/* The UIDs the stub archive "has" in every folder. */
static const uint32_t fz_known[] = { 2, 4, 6 };

struct fz {
	struct fz_run run;		/* first: the session_ops arg is a fz */
	int	 opens;
	uint32_t uids[FZ_MAX_UIDS];	/* delivered in the open folder */
	size_t	 n_uids;
	char	*names[FZ_MAX_NAMES];	/* folder names offered, distinct */
	size_t	 n_names;
};
_Static_assert(offsetof(struct fz, run) == 0, "fz_run is not first");

static void
fz_imap_pause(void *c)
{
	imap_client_pause(c);
}

static void
fz_imap_resume(void *c)
{
	imap_client_resume(c);
}

static void
fz_imap_cancel(void *c)
{
	imap_client_cancel(c);
}

/* The size msg_begin() gets is the literal's: exact. */
static const struct fz_client fz_imap = {
	fz_imap_pause, fz_imap_resume, fz_imap_cancel, true,
};

/* A name must be printable so it cannot forge a protocol or journal
 * line, whether it is only asked about or opened. */
static void
fz_check_printable(const char *name)
{
	const unsigned char *s;

	for (s = (const unsigned char *)name; *s != '\0'; s++)
		if (*s < 0x20 || *s == 0x7f)
			fz_bug("a folder name with a control byte");
}

/*
 * Folder names are how the archive tells folders apart (they never become
 * paths): two server folders must never be opened under one name.  Only
 * opened: a name that cannot be opened is asked about once per LIST line,
 * and a server may list it twice.
 */
static void
fz_check_name(struct fz *f, const char *name)
{
	size_t i;

	fz_check_printable(name);
	for (i = 0; i < f->n_names; i++)
		if (strcmp(f->names[i], name) == 0)
			fz_bug("two folders offered under one name");
	if (f->n_names < FZ_MAX_NAMES &&
	    (f->names[f->n_names] = strdup(name)) != NULL)
		f->n_names++;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return fz_init();
}

/* ---- the owner: the IMAP half of session_ops --------------------------- */

static bool
o_want(void *arg, const char *name, char delim)
{
	fz_alive(arg);
	if (name == NULL || name[0] == '\0')
		fz_bug("want_folder() with an empty name");
	fz_check_printable(name);
	return strcmp(name, "Trash") != 0;
}

static int
o_open(void *arg, const struct session_folder *sf, uint32_t **known,
    size_t *n)
{
	struct fz *f = arg;
	uint32_t *k;

	fz_alive(&f->run);
	if (f->run.in_folder)
		fz_bug("folder_open() while a folder is open");
	fz_check_name(f, sf->name);
	if ((f->run.flags & FZ_F_SKIP) && f->opens++ % 2 == 1)
		return 1;
	if ((k = malloc(sizeof fz_known)) == NULL)
		return -ENOMEM;
	memcpy(k, fz_known, sizeof fz_known);
	*known = k;
	*n = sizeof fz_known / sizeof *fz_known;
	f->run.in_folder = true;
	f->n_uids = 0;
	return 0;
}

static void
fz_uid_check(struct fz *f, uint32_t uid)
{
	size_t i;

	if (!f->run.in_folder)
		fz_bug("a message or item outside an open folder");
	if (uid == 0)
		fz_bug("IMAP message or item with UID 0");
	for (i = 0; i < sizeof fz_known / sizeof *fz_known; i++)
		if (uid == fz_known[i])
			fz_bug("a UID the archive has was fetched again");
	for (i = 0; i < f->n_uids; i++)
		if (f->uids[i] == uid)
			fz_bug("one UID reported twice in one folder");
	if (f->n_uids < FZ_MAX_UIDS)
		f->uids[f->n_uids++] = uid;
}

static void
o_message(void *arg, const struct session_folder *sf, uint32_t uid,
    const char *key, void *h, int64_t idate)
{
	struct fz *f = arg;
	struct fz_msg *m = h;

	fz_alive(&f->run);
	fz_uid_check(f, uid);
	if (key != NULL)
		fz_bug("IMAP message with a key");
	if (m == NULL || !m->ended || m->len != m->size)
		fz_bug("message() with a handle not ended or short");
	fz_delivered(&f->run, m);
}

static void
o_item(void *arg, const struct session_folder *sf, uint32_t uid,
    const char *key, enum session_item kind, const char *text)
{
	struct fz *f = arg;

	fz_alive(&f->run);
	fz_uid_check(f, uid);
	if (text == NULL || key != NULL)
		fz_bug("item() without text or with a key");
}

static const struct session_ops fz_ops = {
	o_ready, o_want, o_open, NULL, o_planned, o_begin, o_write, o_end,
	o_discard, o_message, o_item, o_event, o_folder_done, o_done,
};

/* ---- one input -------------------------------------------------------- */

static void
fz_params(struct fz *f, struct imap_client_params *p)
{
	memset(p, 0, sizeof *p);
	fz_net_params(&f->run, &p->net);
	p->user = "alice";
	p->password = "s3cret";
	p->allow_plaintext = true;
	p->timeout_ms = 2000;
	p->max_message_size = FZ_MAX_MSG;
	p->max_folder_messages = 100000;
	if (f->run.flags & FZ_F_NARROW) {
		p->fetch_batch = 1;
		p->fetch_window = 1;
	}
}

static void
fz_free(struct fz *f)
{
	size_t i;

	imap_client_free(f->run.client);
	for (i = 0; i < f->n_names; i++)
		free(f->names[i]);
	fz_run_free(&f->run);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_client_params p;
	struct imap_client *c;
	struct fz f;

	if (size < 2)
		return 0;
	memset(&f, 0, sizeof f);
	fz_run_init(&f.run, &fz_imap, data[0]);
	fz_params(&f, &p);
	if (imap_client_start(f.run.base, NULL, &p, &fz_ops, &f, &c) < 0)
		fz_bug("imap_client_start failed");
	f.run.client = c;
	fz_run_serve(&f.run, data, size);
	fz_free(&f);
	return 0;
}
