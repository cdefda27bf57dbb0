/*
 * session.h - the contract between a mailbox session (IMAP now, POP3 later)
 * and its owner, the run.  A session walks the mailbox by itself and calls
 * back into the run for decisions (which folders, what is known already)
 * and with results (each whole message, failed items, events).  The run
 * never learns which protocol it talks to; the protocol clients never learn
 * about the store.  It lives in base/ because both sides include it and
 * dependencies point one way.
 */
#ifndef MAILSTOW_BASE_SESSION_H
#define MAILSTOW_BASE_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

/* A folder as the session opened it.  Borrowed for the callback's length. */
struct session_folder {
	const char *name;		/* UTF-8, for people, config and index */
	char	 delim;			/* hierarchy delimiter, 0 if none */
	uint32_t uidvalidity, uidnext, messages;
	uint64_t highestmodseq;		/* 0 without CONDSTORE */
};

enum session_fail {
	SESSION_OK,
	SESSION_FAIL_CONNECT,		/* DNS, TCP */
	SESSION_FAIL_TLS,		/* handshake, certificate, STARTTLS */
	SESSION_FAIL_PROTOCOL,		/* the server broke the protocol or a limit */
	SESSION_FAIL_AUTH,		/* credentials refused */
	SESSION_FAIL_TIMEOUT,
	SESSION_FAIL_LOCAL,		/* our side: disk, memory */
	SESSION_FAIL_CANCELLED,		/* the owner asked to stop */
	_SESSION_FAIL_MAX,
};

enum session_item {
	SESSION_ITEM_FAILED,		/* could not be fetched; text says why */
	SESSION_ITEM_VANISHED,		/* gone from the server during the run */
	SESSION_ITEM_TOO_LARGE,		/* above the profile's max_message_size */
};

struct session_ops {
	/* Logged in; `summary` describes the transport ("TLSv1.3, ..."). */
	void	(*ready)(void *arg, const char *summary);
	/* Archive this folder? */
	bool	(*want_folder)(void *arg, const char *name, char delim);
	/*
	 * The folder was opened.  Return 1 to skip it (unchanged since it was
	 * last completed), 0 to archive it, with *ret_known set to the sorted
	 * UIDs already archived (malloc'ed, the session frees it; NULL when
	 * none), or a negative errno to fail the session.
	 */
	int	(*folder_open)(void *arg, const struct session_folder *,
		    uint32_t **ret_known, size_t *ret_n_known);
	/*
	 * For protocols that name messages by string (POP3 UIDL) instead of
	 * UIDs: which of these keys are archived already?  Sets
	 * ret_known[i] for each of the n keys.  0 or -errno (fails the
	 * session).  Called after folder_open, before folder_planned.
	 */
	int	(*keys_known)(void *arg, const struct session_folder *,
		    const char *const *keys, size_t n, bool *ret_known);
	/* `found` messages on the server, `todo` of them to fetch. */
	void	(*folder_planned)(void *arg, const struct session_folder *,
		    uint64_t found, uint64_t todo);
	/*
	 * Message sink: begin returns a handle (NULL: failure, the session
	 * fails with SESSION_FAIL_LOCAL), write/end return 0 or -errno.
	 * discard frees a handle that will not be delivered.
	 */
	void	*(*msg_begin)(void *arg, uint64_t size);
	int	(*msg_write)(void *arg, void *h, const void *buf, size_t len);
	int	(*msg_end)(void *arg, void *h);
	void	(*msg_discard)(void *arg, void *h);
	/*
	 * A whole message; ownership of `h` passes to the callee.  `uid` is
	 * the IMAP UID (0 for POP3), `key` the POP3 UIDL (NULL for IMAP, and
	 * for a POP3 server without UIDL).
	 */
	void	(*message)(void *arg, const struct session_folder *, uint32_t uid,
		    const char *key, void *h, int64_t internaldate);
	/* One message could not be archived (or went away). */
	void	(*item)(void *arg, const struct session_folder *, uint32_t uid,
		    const char *key, enum session_item, const char *text);
	/* Something the protocol should show; folder may be NULL. */
	void	(*event)(void *arg, enum log_level, const struct session_folder *,
		    const char *text);
	/* Done with a folder; `complete`: every planned message was delivered. */
	void	(*folder_done)(void *arg, const struct session_folder *, bool complete);
	/*
	 * The session is over (called once).  SESSION_OK after a clean
	 * logout; else the category and a sentence that says what happened
	 * and what to check.  The owner may free the session from here.
	 */
	void	(*done)(void *arg, enum session_fail, const char *why);
};

const char *session_fail_name(enum session_fail);

#endif
