/*
 * fuzz_pop3_session.c - the whole POP3 client state machine, not only its
 * parser: the input is what a server sends on a plaintext TCP connection
 * on 127.0.0.1, fed in writes whose boundaries come from its first bytes,
 * then the server half-closes.  The session must end by itself (done()
 * exactly once, before a hard cap), keep the session_ops contract (never
 * fetch a UIDL the archive has) and leave nothing allocated.  The harness
 * is fuzz_session.h; this file has the POP3 client, its params and the
 * INBOX and UIDL checks.
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
#include "pop3/pop3_client.h"
#include "pop3/pop3_parser.h"

#define FZ_NAME	"fuzz_pop3_session"
#include "fuzz_session.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_F_SKIP	0x20	/* folder_open says "unchanged" */
#define FZ_F_APOP	0x80	/* log in with APOP, one RETR in flight */

#define FZ_MAX_KEYS	512		/* delivered UIDLs remembered */

/* The stub archive "has" every UIDL that starts with this. */
#define FZ_KNOWN_PREFIX	"k"

struct fz {
	struct fz_run run;		/* first: the session_ops arg is a fz */
	int	 opens;
	char	*keys[FZ_MAX_KEYS];	/* UIDLs delivered */
	size_t	 n_keys;
	bool	 asked;			/* keys_known() was called */
};
_Static_assert(offsetof(struct fz, run) == 0, "fz_run is not first");

static void
fz_pop3_pause(void *c)
{
	pop3_client_pause(c);
}

static void
fz_pop3_resume(void *c)
{
	pop3_client_resume(c);
}

static void
fz_pop3_cancel(void *c)
{
	pop3_client_cancel(c);
}

/* The size msg_begin() gets is the LIST size: a hint, not exact. */
static const struct fz_client fz_pop3 = {
	fz_pop3_pause, fz_pop3_resume, fz_pop3_cancel, false,
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return fz_init();
}

/* ---- the owner: the POP3 half of session_ops --------------------------- */

static int
o_open(void *arg, const struct session_folder *sf, uint32_t **known,
    size_t *n)
{
	struct fz *f = arg;

	fz_alive(&f->run);
	if (f->run.in_folder || f->opens++ > 0)
		fz_bug("POP3 opened more than its one folder");
	if (sf == NULL || sf->name == NULL || strcmp(sf->name, "INBOX") != 0)
		fz_bug("the POP3 folder is not INBOX");
	if (f->run.flags & FZ_F_SKIP)
		return 1;
	f->run.in_folder = true;
	return 0;
}

static bool
fz_key_known(const char *key)
{
	return strncmp(key, FZ_KNOWN_PREFIX, strlen(FZ_KNOWN_PREFIX)) == 0;
}

static int
o_keys(void *arg, const struct session_folder *sf, const char *const *keys,
    size_t n, bool *ret_known)
{
	struct fz *f = arg;
	size_t i;

	fz_alive(&f->run);
	if (!f->run.in_folder || f->asked)
		fz_bug("keys_known() outside the folder or twice");
	f->asked = true;
	for (i = 0; i < n; i++) {
		if (keys[i] == NULL || keys[i][0] == '\0' ||
		    strlen(keys[i]) > POP3_MAX_UIDL)
			fz_bug("keys_known() with an empty or long key");
		ret_known[i] = fz_key_known(keys[i]);
	}
	return 0;
}

/* A message or item: never one the archive has, never one key twice. */
static void
fz_key_check(struct fz *f, uint32_t uid, const char *key)
{
	size_t i;

	if (!f->run.in_folder)
		fz_bug("a message or item outside the open folder");
	if (uid != 0)
		fz_bug("POP3 message or item with a UID");
	if (key == NULL)
		return;
	if (fz_key_known(key))
		fz_bug("a UIDL the archive has was retrieved again");
	for (i = 0; i < f->n_keys; i++)
		if (strcmp(f->keys[i], key) == 0)
			fz_bug("one UIDL reported twice");
	if (f->n_keys < FZ_MAX_KEYS &&
	    (f->keys[f->n_keys] = strdup(key)) != NULL)
		f->n_keys++;
}

static void
o_message(void *arg, const struct session_folder *sf, uint32_t uid,
    const char *key, void *h, int64_t idate)
{
	struct fz *f = arg;
	struct fz_msg *m = h;

	fz_alive(&f->run);
	fz_key_check(f, uid, key);
	if (m == NULL || !m->ended)
		fz_bug("message() with a handle not ended");
	fz_delivered(&f->run, m);
}

static void
o_item(void *arg, const struct session_folder *sf, uint32_t uid,
    const char *key, enum session_item kind, const char *text)
{
	struct fz *f = arg;

	fz_alive(&f->run);
	fz_key_check(f, uid, key);
	if (text == NULL)
		fz_bug("item() without text");
}

static const struct session_ops fz_ops = {
	o_ready, NULL, o_open, o_keys, o_planned, o_begin, o_write, o_end,
	o_discard, o_message, o_item, o_event, o_folder_done, o_done,
};

/* ---- one input -------------------------------------------------------- */

static void
fz_params(struct fz *f, struct pop3_client_params *p)
{
	memset(p, 0, sizeof *p);
	fz_net_params(&f->run, &p->net);
	p->user = "alice";
	p->password = "s3cret";
	p->allow_plaintext = true;
	p->timeout_ms = 2000;
	p->max_message_size = FZ_MAX_MSG;
	p->max_messages = 100000;
	if (f->run.flags & FZ_F_APOP) {
		p->apop = true;
		p->window = 1;
	}
}

static void
fz_free(struct fz *f)
{
	pop3_client_free(f->run.client);
	while (f->n_keys > 0)
		free(f->keys[--f->n_keys]);
	fz_run_free(&f->run);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pop3_client_params p;
	struct pop3_client *c;
	struct fz f;

	if (size < 2)
		return 0;
	memset(&f, 0, sizeof f);
	fz_run_init(&f.run, &fz_pop3, data[0]);
	fz_params(&f, &p);
	if (pop3_client_start(f.run.base, NULL, &p, &fz_ops, &f, &c) < 0)
		fz_bug("pop3_client_start failed");
	f.run.client = c;
	fz_run_serve(&f.run, data, size);
	fz_free(&f);
	return 0;
}
