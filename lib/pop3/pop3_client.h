/*
 * pop3_client.h - a POP3 session that archives a maildrop: connect, TLS
 * or STLS, authenticate (SASL PLAIN, USER/PASS, APOP when asked, or an
 * OAuth2 token with SASL XOAUTH2 or OAUTHBEARER), STAT,
 * UIDL, LIST, and pipelined RETR with each message dot-decoded and
 * streamed into the owner's sink, then QUIT.  It never sends DELE: the
 * server is left as it was.  POP3 has one folder, reported as "INBOX";
 * messages are named by their UIDL (session_ops.keys_known).  The owner
 * sees it through struct session_ops (base/session.h).
 */
#ifndef MAILSTOW_POP3_CLIENT_H
#define MAILSTOW_POP3_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "base/sasl.h"
#include "base/session.h"
#include "net/net.h"

struct event_base;
struct evdns_base;
struct pop3_client;

struct pop3_client_params {
	struct net_params net;		/* strings are copied */
	const char *user;
	const char *password;		/* copied, wiped once sent; may be
					 * NULL with oauth2_token */
	const char *authzid;		/* SASL PLAIN: act for this user
					 * (master-user login); NULL: none */
	const char *oauth2_token;	/* non-NULL: AUTH XOAUTH2 or
					 * OAUTHBEARER with this access token
					 * instead of the password; copied,
					 * wiped once answered.  A refused
					 * token: SESSION_FAIL_AUTH */
	enum sasl_mech mech;		/* which, for oauth2_token */
	bool	 allow_plaintext;	/* send credentials without TLS */
	bool	 apop;			/* log in with APOP (RFC 1939 7) */
	uint32_t timeout_ms;		/* per-reply deadline; 0: 60 s */
	uint64_t max_message_size;	/* larger: SESSION_ITEM_TOO_LARGE;
					 * 0: 256 MiB */
	uint32_t max_messages;		/* STAT count above this fails the
					 * folder; 0: 1,000,000 */
	unsigned window;		/* RETRs in flight with PIPELINING;
					 * 0: 4, at most 16 */
};

/*
 * Start a session.  Callbacks arrive on `base`; ops->done() is called
 * exactly once, from its own event (never from inside pop3_client_start
 * or pop3_client_cancel), and only after it may the owner free the client.
 * ops->want_folder is not used; ops->keys_known may be NULL (then no UIDL
 * counts as archived).  Returns 0, -ENOMEM, or what net_connect() returned.
 */
int	pop3_client_start(struct event_base *, struct evdns_base *,
	    const struct pop3_client_params *, const struct session_ops *ops,
	    void *arg, struct pop3_client **ret);
/* Stop now: close the connection and report SESSION_FAIL_CANCELLED.
 * Messages already delivered stay delivered; a partial one is discarded. */
void	pop3_client_cancel(struct pop3_client *);
/* NULL is fine. */
void	pop3_client_free(struct pop3_client *);
/* Backpressure, as imap_client_pause()/imap_client_resume(). */
void	pop3_client_pause(struct pop3_client *);
void	pop3_client_resume(struct pop3_client *);

#endif
