/*
 * pop3_client_private.h - what pop3_client.c (connection, greeting, CAPA,
 * STLS, deadline, QUIT), pop3_auth.c (login) and pop3_retr.c (STAT, UIDL,
 * LIST, RETR) share.
 */
#ifndef MAILSTOW_POP3_CLIENT_PRIVATE_H
#define MAILSTOW_POP3_CLIENT_PRIVATE_H

#include <event2/event.h>

#include "base/session_core.h"
#include "pop3/pop3_client.h"
#include "pop3/pop3_parser.h"

enum pop3_state {
	POP3_S_CONNECTING,
	POP3_S_GREETING,
	POP3_S_CAPA,
	POP3_S_STLS,
	POP3_S_HANDSHAKE,
	POP3_S_AUTH,			/* AUTH PLAIN, XOAUTH2, OAUTHBEARER */
	POP3_S_USER,
	POP3_S_PASS,
	POP3_S_APOP,
	POP3_S_POSTAUTH_CAPA,
	POP3_S_STAT,
	POP3_S_UIDL,
	POP3_S_LIST,
	POP3_S_RETR,
	POP3_S_QUIT,
	POP3_S_DONE,
	_POP3_S_MAX,
};

#define POP3_MAX_WINDOW		16

/* One message of the maildrop, index = message number - 1. */
struct pop3_msg {
	char	*uidl;			/* NULL: none usable */
	uint64_t size;			/* from LIST, when has_size */
	bool	 has_size;
	bool	 seen;			/* numbered in the current listing */
};

struct pop3_client {
	struct event_base *base;
	struct evdns_base *dns;
	struct pop3_client_params p;
	char	*host, *ca_file, *server_name, *user, *password;
	char	*authzid;		/* act for this user, or NULL */
	char	*token;			/* OAuth2 access token, or NULL; wiped
					 * once answered, like the password */
	const struct session_ops *ops;
	void	*arg;

	struct net_conn *conn;
	struct bufferevent *bev;
	enum pop3_state state;
	unsigned caps;
	bool	 capa_failed;		/* CAPA answered -ERR */
	bool	 in_multi;		/* reading a listing after +OK */
	bool	 sent_auth_response;
	bool	 sent_auth_dummy;	/* answered an OAuth2 error challenge */
	enum sasl_mech mech;		/* the OAuth2 mechanism in use */
	char	 auth_said[512];	/* the error challenge, escaped */
	char	 timestamp[260];	/* APOP "<...>" from the greeting */
	struct session_core core;	/* deadline, outcome, pause */
	size_t	 progress;		/* bytes since the deadline was armed */
	bool	 finished;
	char	 line[POP3_MAX_LINE + 1];

	/* the one folder */
	struct session_folder sf;
	bool	 folder_open;
	struct pop3_msg *msgs;
	uint32_t n_msgs;		/* STAT count */
	size_t	 listing_lines;
	size_t	 bad_lines, bad_uidls;
	char	 bad_example[128];
	uint32_t *plan;			/* message indices to RETR */
	size_t	 n_plan, next_send;
	size_t	 inflight[POP3_MAX_WINDOW];	/* plan slots, FIFO order */
	size_t	 n_inflight;
	bool	 folder_incomplete;

	/* the RETR reply being decoded */
	bool	 in_body;
	struct pop3_dot dot;
	void	*msg;
	uint64_t msg_bytes;
	bool	 msg_oversize;
};

const char *pop3_state_name(enum pop3_state);
void	pop3_enter(struct pop3_client *, enum pop3_state);
/* Send a command + CRLF (never a secret: it is logged at debug level). */
int	pop3_send(struct pop3_client *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* Send prefix + secret + CRLF; the log shows prefix + "<redacted>". */
int	pop3_send_secret(struct pop3_client *, const char *prefix,
	    const char *secret);
/* Fail the session: tear down, then report from a fresh event. */
void	pop3_fail(struct pop3_client *, enum session_fail, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
void	pop3_arm_deadline(struct pop3_client *);
/* Server text made safe for protocols and logs ("[CODE] text"). */
void	pop3_server_words(const struct pop3_status *, char *buf, size_t len);
/* Send CAPA and enter `s` (POP3_S_CAPA or POP3_S_POSTAUTH_CAPA). */
void	pop3_send_capa(struct pop3_client *, enum pop3_state s);
/* Send QUIT; the session ends with SESSION_OK on its answer. */
void	pop3_quit(struct pop3_client *);

/* pop3_auth.c */
void	pop3_start_auth(struct pop3_client *);
void	pop3_auth_status(struct pop3_client *, const struct pop3_status *);
/* Mask the password or token, while we hold it, in server text. */
void	pop3_auth_redact(struct pop3_client *, char *text);

/* pop3_retr.c: the maildrop walk, started once logged in. */
void	pop3_walk_start(struct pop3_client *);
void	pop3_walk_status(struct pop3_client *, const struct pop3_status *);
void	pop3_walk_line(struct pop3_client *, char *line, size_t len);
void	pop3_walk_listing_end(struct pop3_client *);
/* Decode RETR data from `in`: 1 reply done, 0 need more, -1 failed. */
int	pop3_body_feed(struct pop3_client *, struct evbuffer *in);
void	pop3_msg_drop(struct pop3_client *);
void	pop3_walk_reset(struct pop3_client *);

#endif
