/*
 * imap_client.h - an IMAP session that archives a mailbox: connect, TLS
 * or STARTTLS, authenticate, LIST, and for each wanted folder EXAMINE
 * (read-only), UID SEARCH, pipelined UID FETCH of BODY.PEEK[] streamed
 * into the owner's sink.  It never changes anything on the server.
 * The owner sees it through struct session_ops (base/session.h).
 */
#ifndef MAILSTOW_IMAP_CLIENT_H
#define MAILSTOW_IMAP_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "base/sasl.h"
#include "base/session.h"
#include "imap/imap_parser.h"
#include "net/net.h"

struct event_base;
struct evdns_base;
struct imap_client;

struct imap_client_params {
	struct net_params net;		/* strings are copied */
	const char *user;
	const char *password;		/* copied, wiped once sent; may be
					 * NULL with oauth2_token */
	const char *authzid;		/* SASL PLAIN: act for this user
					 * (master-user login); NULL: none */
	const char *oauth2_token;	/* non-NULL: AUTHENTICATE XOAUTH2 or
					 * OAUTHBEARER with this access token
					 * instead of the password; copied,
					 * wiped once answered.  A refused
					 * token: SESSION_FAIL_AUTH */
	enum sasl_mech mech;		/* which, for oauth2_token */
	bool	 allow_plaintext;	/* send credentials without TLS */
	uint32_t timeout_ms;		/* per-response deadline (see .c) */
	uint64_t max_message_size;	/* larger: SESSION_ITEM_TOO_LARGE */
	uint32_t max_folder_messages;	/* EXISTS above this fails the folder */
	unsigned fetch_batch;		/* UIDs per UID FETCH; 0: default 64 */
	unsigned fetch_window;		/* UID FETCHes in flight; 0: default 4 */
	struct imap_limits limits;	/* zeroed: imap_limits_default() */
};

/*
 * Start a session.  Callbacks arrive on `base`; ops->done() is called
 * exactly once, from its own event (never from inside imap_client_start
 * or imap_client_cancel), and only after it may the owner free the client.
 */
int	imap_client_start(struct event_base *, struct evdns_base *,
	    const struct imap_client_params *, const struct session_ops *ops,
	    void *arg, struct imap_client **ret);
/* Stop now: close the connection and report SESSION_FAIL_CANCELLED.
 * Messages already delivered stay delivered; a partial one is discarded. */
void	imap_client_cancel(struct imap_client *);
void	imap_client_free(struct imap_client *);
/*
 * Backpressure: stop reading after the current response (the owner's
 * commits are behind), and go on later.  While paused the deadline does
 * not run: the server is not the slow one.
 */
void	imap_client_pause(struct imap_client *);
void	imap_client_resume(struct imap_client *);

#endif
