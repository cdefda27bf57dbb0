/*
 * oauth2.h - OAuth2 access tokens for unattended IMAP/POP3 logins: the
 * token file of a profile, the token endpoint client (RFC 6749 refresh
 * and client_credentials grants, RFC 8628 device authorization) on the
 * caller's libevent loop through libcurl's multi interface, and the rule
 * that turns "give me a token" into load, refresh, save.  No token or
 * secret ever appears in an error text.
 */
#ifndef MAILSTOW_OAUTH2_H
#define MAILSTOW_OAUTH2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"

struct event_base;

/* Refresh an access token this long before it expires. */
#define OAUTH2_EXPIRY_MARGIN	300	/* seconds */
/* The largest token endpoint response we read. */
#define OAUTH2_MAX_RESPONSE	(64 * 1024)

/* What a profile holds; every string heap, NULL when absent. */
struct oauth2_tokens {
	char	*access_token;
	int64_t	 expires_at;		/* unix seconds; 0: unknown */
	char	*refresh_token;		/* NULL with client_credentials */
	char	*scope;
	int64_t	 updated_at;		/* unix seconds of the last save */
};

/* Wipe and free the strings; the struct may be reused. */
void	oauth2_tokens_clear(struct oauth2_tokens *);

/*
 * "<archive_path>/oauth2/<profile>.json" in `buf`.  -ENAMETOOLONG.
 * -EINVAL for a name that is empty, starts with '.' or holds a '/'.
 */
int	oauth2_token_path(const char *archive_path, const char *profile,
	    char *buf, size_t len);

/*
 * Read a token file.  -ENOENT when there is none (never logged in),
 * -EPERM when it is readable by group or others (refused: it holds a
 * secret), -EINVAL when malformed (bounded: OAUTH2_MAX_RESPONSE).
 */
int	oauth2_tokens_load(const char *path, struct oauth2_tokens *ret);

/*
 * Write a token file atomically and durably: a 0600 temporary file in the
 * same directory, fsync, rename over the old one, fsync the directory
 * (created 0700 when missing).  A crash at any point leaves either the
 * old file or the new one whole, never neither.  When run as root in a
 * directory owned by someone else (the CLI writing for the daemon's
 * user), the file is given to the directory's owner.  0 or -errno.
 * updated_at is written as the time of this save.
 */
int	oauth2_tokens_save(const char *path, const struct oauth2_tokens *);

/* Parse a token endpoint JSON body (exposed for tests and fuzzing). */
int	oauth2_parse_token_response(const char *body, size_t len,
	    int64_t now, struct oauth2_tokens *ret, char *err, size_t errlen);

/*
 * Parse the bytes of a token file (exposed for tests and fuzzing): 0 and
 * *ret, or -EINVAL when malformed.  Strings are checked like a response's.
 */
int	oauth2_tokens_parse(const char *data, size_t len,
	    struct oauth2_tokens *ret);

enum oauth2_status {
	OAUTH2_OK,
	OAUTH2_ERR_NETWORK,		/* DNS, TCP, timeout, HTTP 5xx */
	OAUTH2_ERR_TLS,			/* certificate or handshake */
	OAUTH2_ERR_LOGIN,		/* invalid_grant, no token file, no
					 * refresh token: the user must run
					 * `mailstow oauth2 login PROFILE` */
	OAUTH2_ERR_CLIENT,		/* invalid_client, unauthorized_client,
					 * invalid_scope: fix the config */
	OAUTH2_ERR_PENDING,		/* device flow: not approved yet */
	OAUTH2_ERR_SLOW_DOWN,		/* device flow: poll less often */
	OAUTH2_ERR_DENIED,		/* device flow: the user said no */
	OAUTH2_ERR_EXPIRED,		/* device flow: the code expired */
	OAUTH2_ERR_PROTOCOL,		/* malformed or oversized response */
	OAUTH2_ERR_LOCAL,		/* memory, token file, secret file */
};

const char *oauth2_status_name(enum oauth2_status);

/* The endpoint client: one per event loop, many requests at once. */
struct oauth2_client;

int	oauth2_client_new(struct event_base *, struct oauth2_client **ret);
/* Cancels pending requests without calling their callbacks, and waits
 * for token files still being written (oauth2_token_get). */
void	oauth2_client_free(struct oauth2_client *);

/* A device authorization (RFC 8628 section 3.2), strings heap. */
struct oauth2_device {
	char	*device_code;		/* secret-ish: never printed */
	char	*user_code;
	char	*verification_uri;
	char	*verification_uri_complete;	/* NULL when absent */
	uint32_t interval;		/* seconds between polls, default 5 */
	uint32_t expires_in;		/* seconds */
};

void	oauth2_device_clear(struct oauth2_device *);

/*
 * Parse a device authorization response (exposed for tests and fuzzing).
 * "verification_url" (Google) is read as verification_uri; interval
 * defaults to 5 and is at most 600, expires_in is required.  0 and *ret,
 * or -EINVAL with `err` naming the member at fault (never its value).
 */
int	oauth2_parse_device_response(const char *body, size_t len,
	    struct oauth2_device *ret, char *err, size_t errlen);

/*
 * The outcome of a request, borrowed for the callback's length (the
 * callee may move the strings out and NULL them).  `why` is a sentence
 * for the protocol and the journal: what happened and what to do, with
 * the server's error code and description escaped, never a token.
 */
struct oauth2_result {
	enum oauth2_status status;
	char	 why[512];
	struct oauth2_tokens tokens;	/* OAUTH2_OK of a token request */
	struct oauth2_device device;	/* OAUTH2_OK of oauth2_device_start */
};

typedef void (*oauth2_cb)(void *arg, struct oauth2_result *);
struct oauth2_request;

/*
 * Token endpoint requests for profile `p` (its auth.oauth2), all
 * HTTPS-only with the same certificate rules as mail connections (system
 * store or oauth2.ca_file, host name checked, TLS 1.2 or later), no
 * redirects, bounded time and size.  `cb` runs once, from the loop,
 * never from inside the call.  *ret (may be NULL) lets the caller
 * cancel.  0 or -errno (then no callback).
 */
int	oauth2_refresh(struct oauth2_client *, const struct conf_profile *p,
	    const char *refresh_token, oauth2_cb, void *arg,
	    struct oauth2_request **ret);
int	oauth2_client_credentials(struct oauth2_client *,
	    const struct conf_profile *p, oauth2_cb, void *arg,
	    struct oauth2_request **ret);
int	oauth2_device_start(struct oauth2_client *, const struct conf_profile *p,
	    oauth2_cb, void *arg, struct oauth2_request **ret);
int	oauth2_device_poll(struct oauth2_client *, const struct conf_profile *p,
	    const char *device_code, oauth2_cb, void *arg,
	    struct oauth2_request **ret);
/* The callback will not run.  Only before it ran: the request is freed
 * once its callback returns.  NULL is fine. */
void	oauth2_request_cancel(struct oauth2_request *);

/*
 * The one call a run makes: a usable access token for profile `p`.
 * Loads the token file at `path`; when its access token is valid for
 * more than OAUTH2_EXPIRY_MARGIN and `force` is false, answers with it
 * (from the loop, still asynchronously).  Otherwise refreshes it (or
 * runs the client_credentials grant), saves the new tokens with
 * oauth2_tokens_save() on a thread of the client BEFORE answering -- a
 * rotated refresh token is never held only in memory -- and answers.
 * A cancel during that save suppresses only the answer, never the save
 * (a failed save nobody waits for is logged).  A refused refresh token
 * (invalid_grant), a missing token file or one without a refresh token
 * is OAUTH2_ERR_LOGIN with a `why` that names
 * `mailstow oauth2 login PROFILE`.  `force`: refresh even if the stored
 * token looks valid (the server refused it).
 */
int	oauth2_token_get(struct oauth2_client *, const struct conf_profile *p,
	    const char *path, bool force, oauth2_cb, void *arg,
	    struct oauth2_request **ret);

#endif
