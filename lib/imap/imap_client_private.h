/*
 * imap_client_private.h - what imap_client.c (connection, capabilities,
 * dispatch), imap_auth.c (login), imap_list.c (LIST) and imap_fetch.c
 * (EXAMINE, SEARCH, FETCH) share.
 */
#ifndef MAILSTOW_IMAP_CLIENT_PRIVATE_H
#define MAILSTOW_IMAP_CLIENT_PRIVATE_H

#include <event2/event.h>

#include "base/sasl.h"
#include "base/session_core.h"
#include "imap/imap_client.h"
#include "imap/imap_util.h"

enum imap_state {
	IMAP_S_CONNECTING,
	IMAP_S_GREETING,
	IMAP_S_CAPABILITY,
	IMAP_S_STARTTLS,
	IMAP_S_HANDSHAKE,
	IMAP_S_AUTH,
	IMAP_S_POSTAUTH_CAPABILITY,
	IMAP_S_LIST,
	IMAP_S_EXAMINE,
	IMAP_S_SEARCH,
	IMAP_S_FETCH,
	IMAP_S_LOGOUT,
	IMAP_S_DONE,
	_IMAP_S_MAX,
};

enum imap_cap {
	IMAP_CAP_IMAP4REV1	= 1 << 0,
	IMAP_CAP_STARTTLS	= 1 << 1,
	IMAP_CAP_LOGINDISABLED	= 1 << 2,
	IMAP_CAP_AUTH_PLAIN	= 1 << 3,
	IMAP_CAP_SASL_IR	= 1 << 4,
	IMAP_CAP_LITERALPLUS	= 1 << 5,
	IMAP_CAP_ESEARCH	= 1 << 6,
	IMAP_CAP_CONDSTORE	= 1 << 7,
	IMAP_CAP_AUTH_XOAUTH2	= 1 << 8,
	IMAP_CAP_AUTH_OAUTHBEARER = 1 << 9,
};

struct imap_folder {
	char	*name;			/* UTF-8 */
	char	*raw;			/* as the server spells it */
	size_t	 raw_len;
	char	 delim;
	bool	 raw_named;		/* not valid mUTF-7: named by its bytes */
	bool	 dropped;		/* its name collides: not archived */
};

#define IMAP_MAX_WINDOW	16

struct imap_fetch_cmd {
	char	 tag[16];
	size_t	 first, count;		/* slice of c->plan */
};

struct imap_client {
	struct event_base *base;
	struct evdns_base *dns;
	struct imap_client_params p;
	char	*host, *ca_file, *server_name, *user, *password;
	char	*authzid;		/* act for this user, or NULL */
	char	*token;			/* OAuth2 access token, or NULL; wiped
					 * once answered, like the password */
	const struct session_ops *ops;
	void	*arg;

	struct net_conn *conn;
	struct bufferevent *bev;
	struct imap_parser *parser;
	enum imap_state state;
	unsigned tagseq;
	char	 tag[16];		/* the one non-FETCH command in flight */
	unsigned caps;
	bool	 caps_known;
	bool	 sent_auth_response;
	bool	 sent_auth_dummy;	/* answered an OAuth2 error challenge */
	enum sasl_mech mech;		/* the OAuth2 mechanism in use */
	char	 auth_mechs[128];	/* "PLAIN XOAUTH2": AUTH= offered */
	char	 auth_said[512];	/* the error challenge, escaped */
	struct session_core core;	/* deadline, outcome, pause */
	size_t	 progress;		/* literal bytes since the deadline */
	char	 bye[512];		/* last BYE text, for messages */
	bool	 finished;

	struct imap_folder *folders;
	size_t	 n_folders, cap_folders, cur;
	struct session_folder sf;
	bool	 have_uidvalidity;
	struct imap_uidset found;
	uint32_t *plan;
	size_t	 n_plan, next_plan, resolved;
	uint8_t	*got;
	bool	 folder_incomplete;
	struct imap_fetch_cmd inflight[IMAP_MAX_WINDOW];
	size_t	 n_inflight;

	/* the BODY[] literal being received */
	void	*msg;
	bool	 msg_active, msg_oversize, msg_ended;
	uint64_t msg_size;
};

const char *imap_state_name(enum imap_state);
void	imap_enter(struct imap_client *, enum imap_state);
/* Send "TAG " + text + CRLF; the tag is stored in `tag_out` (16 bytes). */
int	imap_send(struct imap_client *, char *tag_out, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
/* Fail the session: tear down, then report from a fresh event. */
void	imap_fail(struct imap_client *, enum session_fail, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
void	imap_arm_deadline(struct imap_client *);
/* Server text made safe for protocols and logs ("[CODE] text"). */
void	imap_server_words(const struct imap_response *, char *buf, size_t len);

/* imap_auth.c: LOGIN, AUTHENTICATE PLAIN, XOAUTH2 and OAUTHBEARER. */
void	imap_auth_start(struct imap_client *);
/* A "+" continuation (only valid during authentication). */
void	imap_auth_continue(struct imap_client *, const struct imap_response *);
/* The tagged answer to the login: 0 logged in, -1 the session failed. */
int	imap_auth_tagged(struct imap_client *, const struct imap_response *);
/* Mask the password or token, while we hold it, in server text. */
void	imap_auth_redact(struct imap_client *, char *text);

/* imap_list.c: one "* LIST" entry; the end of LIST starts the walk. */
void	imap_list_entry(struct imap_client *, const struct imap_response *);
void	imap_list_done(struct imap_client *, const struct imap_response *);
void	imap_list_free(struct imap_client *);

/* imap_fetch.c: the folder walk, started after LIST. */
void	imap_walk_next_folder(struct imap_client *);
void	imap_walk_untagged(struct imap_client *, const struct imap_response *);
void	imap_walk_tagged(struct imap_client *, const struct imap_response *);
int	imap_literal_begin(void *arg, uint64_t size, const char *section, bool in_fetch);
int	imap_literal_data(void *arg, const void *buf, size_t len);
int	imap_literal_end(void *arg);
void	imap_msg_drop(struct imap_client *);
void	imap_walk_reset(struct imap_client *);

#endif
