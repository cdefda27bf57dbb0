/*
 * source.h - a mailbox session of whichever protocol a profile names.
 * The run calls this and never says "IMAP": the session reports through
 * struct session_ops (base/session.h).
 */
#ifndef MAILSTOW_SOURCE_H
#define MAILSTOW_SOURCE_H

#include "base/session.h"
#include "conf/conf.h"

struct event_base;
struct evdns_base;
struct source;

/* Who logs in: `user`, acting for `authzid` when not NULL (master user). */
struct source_login {
	const char *user;
	const char *authzid;
	const char *password;		/* copied and wiped by the session */
	/*
	 * Non-NULL: log in with this OAuth2 access token (SASL XOAUTH2 or
	 * OAUTHBEARER per `mech`) instead of `password`; copied and wiped
	 * like it.  A refused token ends the session SESSION_FAIL_AUTH.
	 */
	const char *oauth2_token;
	enum conf_auth_mech mech;
};

/*
 * Start a session for profile `p` with `login`.  ops->done() is called
 * exactly once, from its own event; free the source only after it.
 * -ENOMEM, or what the protocol client returns.
 */
int	source_start(struct event_base *, struct evdns_base *,
	    const struct conf_profile *p, const struct source_login *login,
	    const struct session_ops *ops, void *arg, struct source **ret);
/* Stop reading after the current message / go on (backpressure). */
void	source_pause(struct source *);
void	source_resume(struct source *);
/* Stop now; done() follows with SESSION_FAIL_CANCELLED. */
void	source_cancel(struct source *);
void	source_free(struct source *);

#endif
