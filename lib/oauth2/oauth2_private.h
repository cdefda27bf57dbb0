/*
 * oauth2_private.h - what the files of lib/oauth2 share: limits, the
 * bounded JSON helpers (oauth2_json.c), the request object and its life
 * on the client's loop (oauth2_client.c), the mapping of an HTTP outcome
 * to a result with its `why` (oauth2_result.c), the token file written
 * off the loop thread (oauth2_save.c).
 */
#ifndef MAILSTOW_OAUTH2_PRIVATE_H
#define MAILSTOW_OAUTH2_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <event2/event_struct.h>
#include <jansson.h>

#include "oauth2.h"

#define OAUTH2_MAX_TOKEN	(16 * 1024)	/* bytes of one token or code */
#define OAUTH2_MAX_SCOPE	4096
#define OAUTH2_MAX_URI		2048		/* verification_uri */
#define OAUTH2_MAX_DEPTH	16		/* JSON nesting */
#define OAUTH2_MAX_SECRET	4096		/* client secret file */
#define OAUTH2_DEFAULT_EXPIRES	3600		/* expires_in missing */
#define OAUTH2_MAX_EXPIRES	(366 * 86400)	/* longer is clamped */

/* oauth2_json.c */
int	oauth2_json_load(const char *body, size_t len, json_t **ret,
	    char *err, size_t errlen);
/* Zero every string in the tree (they may be tokens), then free it. */
void	oauth2_json_free(json_t *);
/* Bytes 0x21..0x7e, and 0x20 too when `space`. */
bool	oauth2_printable(const char *s, size_t len, bool space);
/*
 * Member `key` of `obj` as a heap string, when it is a string of 1..max
 * printable bytes.  0 and *ret (NULL when absent and not required), or
 * -EINVAL with err saying which member is wrong (never its value).
 */
int	oauth2_json_string(json_t *obj, const char *key, size_t max,
	    bool space, bool required, char **ret, char *err, size_t errlen);
/*
 * The RFC 6749 section 5.2 error object: "error" and "error_description"
 * as raw heap strings (*ret_desc NULL when absent), for the caller to
 * redact and escape.  0, -ENOMEM, or -EINVAL when the body is not such
 * an object.
 */
int	oauth2_parse_error(const char *body, size_t len, char **ret_code,
	    char **ret_desc);

/* oauth2_tokens.c */
int	oauth2_tokens_copy(const struct oauth2_tokens *,
	    struct oauth2_tokens *ret);

enum oauth2_kind {
	OAUTH2_K_REFRESH,
	OAUTH2_K_CLIENT_CREDENTIALS,
	OAUTH2_K_DEVICE_START,
	OAUTH2_K_DEVICE_POLL,
	OAUTH2_K_GET,			/* oauth2_token_get: no HTTP itself */
};

struct oauth2_request {
	struct oauth2_client	*c;
	struct oauth2_request	*next, *prev;	/* c->reqs */
	enum oauth2_kind	 kind;
	oauth2_cb		 cb;
	void			*arg;
	struct event		 done_ev;	/* delivers the result */
	bool			 done;		/* done_ev armed */
	char			 profile[128];
	char			 url[512];	/* for `why`, not secret */

	/* HTTP */
	CURL			*easy;
	char			*body;		/* form, holds secrets */
	size_t			 body_len;
	char			*resp;		/* OAUTH2_MAX_RESPONSE + 1 */
	size_t			 resp_len;
	bool			 resp_too_big;
	char			 errbuf[CURL_ERROR_SIZE];
	char			*old_refresh;	/* kept when not rotated */
	char			*conf_scope;	/* stored when none answered */
	/* What a server must not get echoed into `why`: the client
	 * secret, and the refresh token or device code. */
	char			*secrets[2];

	/* OAUTH2_K_GET */
	char			*path;
	struct oauth2_request	*inner;		/* the grant it waits for */
	struct oauth2_request	*parent;	/* set on that inner request */
	struct oauth2_request	*leader;	/* its refresh serves us too */
	struct oauth2_save	*save;		/* the write it waits for */

	struct oauth2_result	 result;
};

/* oauth2_client.c */
int	oauth2_request_new(struct oauth2_client *, enum oauth2_kind,
	    const struct conf_profile *, oauth2_cb, void *arg,
	    struct oauth2_request **ret);
/* Start the POST of req->body to `url`; 0 or -errno. */
int	oauth2_request_post(struct oauth2_request *, const char *url,
	    const char *ca_file);
/* Answer from the loop with req->result (a zero timer). */
void	oauth2_request_finish(struct oauth2_request *);
void	oauth2_request_free(struct oauth2_request *);
/* The first request of the client, for walking its list. */
struct oauth2_request *oauth2_client_requests(struct oauth2_client *);
struct event_base *oauth2_client_base(struct oauth2_client *);
/* Where the client keeps its saver (oauth2_save.c); NULL until used. */
struct oauth2_saver **oauth2_client_saver(struct oauth2_client *);
/* Fill req->result with status and a formatted `why`. */
void	oauth2_result_set(struct oauth2_request *, enum oauth2_status,
	    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* oauth2_result.c: the transfer of req ended with `res`. */
void	oauth2_result_http(struct oauth2_request *, CURLcode res);

/* oauth2_grant.c: a leader's outcome reaches the requests waiting on it. */
void	oauth2_get_leader_gone(struct oauth2_request *leader);
/* The write of `t` for req ended with `rc`; answer req and its followers
 * (tokens moved out of `t` on success). */
void	oauth2_get_save_done(struct oauth2_request *, struct oauth2_tokens *t,
	    int rc);

/*
 * oauth2_save.c.  Start writing `t` to req->path on the client's save
 * thread and take `t` (zeroed); oauth2_get_save_done(req) follows from
 * the loop.  0, or -errno with `t` left to the caller.
 */
int	oauth2_save_start(struct oauth2_request *, struct oauth2_tokens *t);
/* req is cancelled: its save goes on, answering `heir` (NULL: nobody). */
void	oauth2_save_detach(struct oauth2_request *,
	    struct oauth2_request *heir);
/* Wait for an unanswered save of the same file; true when there is one. */
bool	oauth2_save_adopt(struct oauth2_request *);
/* Finish every write, join the thread, free.  Requests are gone. */
void	oauth2_saver_free(struct oauth2_saver *);
/* Test hooks: keep the thread from writing; count unanswered saves. */
void	oauth2_test_save_hold(struct oauth2_client *, bool hold);
size_t	oauth2_test_saves(struct oauth2_client *);

#endif
