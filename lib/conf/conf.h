/*
 * conf.h - the validated configuration: YAML (libyaml) in, typed structs
 * out.  Every error names file:line:column and the key path, and unknown
 * keys are errors with a "did you mean".  conf.d/NAME.yaml beside the main
 * file adds profiles.  Nothing here touches the network or the archive.
 */
#ifndef MAILSTOW_CONF_H
#define MAILSTOW_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum conf_protocol {
	CONF_PROTO_IMAP,		/* port 143, no TLS */
	CONF_PROTO_IMAPS,		/* port 993, implicit TLS */
	CONF_PROTO_IMAP_STARTTLS,	/* port 143, STARTTLS required */
	CONF_PROTO_POP3,		/* port 110 */
	CONF_PROTO_POP3S,		/* port 995 */
	CONF_PROTO_POP3_STARTTLS,	/* port 110, STLS required */
	_CONF_PROTO_MAX,
};

/* "imap", "imaps", "imap+starttls", "pop3", "pop3s", "pop3+starttls". */
const char *conf_protocol_name(enum conf_protocol);
bool	conf_protocol_is_pop3(enum conf_protocol);

struct conf_tls {
	char	*ca_file;		/* NULL: the system trust store */
	char	*server_name;		/* NULL: server.host (SNI + name check) */
	bool	 has_fingerprint;	/* server.tls.fingerprint "sha256:HEX" */
	uint8_t	 fingerprint[32];	/* SHA-256 of the leaf certificate (DER) */
	bool	 verify;		/* default true */
	bool	 insecure_i_know;	/* required with verify: false */
};

struct conf_server {
	char	*host;
	uint16_t port;			/* 0 in YAML -> default of the protocol */
	enum conf_protocol protocol;
	struct conf_tls tls;
	uint32_t timeout_ms;		/* server.timeout, default 60s: connect,
					 * greeting and each command */
};

enum conf_auth_method {
	CONF_AUTH_AUTHZID,		/* SASL PLAIN, authzid = mailbox user */
	CONF_AUTH_SEPARATOR,		/* login "<user><separator><master>" */
};

/* auth.mechanism for OAuth2 logins. */
enum conf_auth_mech {
	CONF_MECH_AUTO,			/* OAUTHBEARER if offered, else XOAUTH2 */
	CONF_MECH_XOAUTH2,
	CONF_MECH_OAUTHBEARER,
};

enum conf_oauth2_flow {
	CONF_OAUTH2_REFRESH_TOKEN,	/* device-code login, then refresh */
	CONF_OAUTH2_CLIENT_CREDENTIALS,	/* app-only: no user, no login */
};

/*
 * auth.oauth2: where tokens come from.  Endpoints and scope are resolved
 * here from the provider preset and the overrides, so every consumer sees
 * final values.  The client secret stays in its file until a request.
 */
struct conf_oauth2 {
	bool	 enabled;		/* auth.oauth2 given */
	char	*provider;		/* "microsoft", "google" or NULL */
	char	*tenant;		/* microsoft: default "organizations" */
	char	*client_id;
	char	*client_secret_file;	/* NULL: a public client */
	enum conf_oauth2_flow flow;
	char	*token_endpoint;	/* https:// URL */
	char	*device_authorization_endpoint;	/* NULL with client_credentials */
	char	*scope;			/* space-separated */
	char	*ca_file;		/* NULL: the system store */
};

struct conf_auth {
	char	*user;
	char	*password_file;		/* at most one of these three */
	char	*password;		/* inline: file must be 0600-ish */
	char	*password_credential;	/* name in $CREDENTIALS_DIRECTORY */
	bool	 apop;			/* auth.apop: POP3 APOP login (MD5;
					 * only for old servers) */
	char	*master_user;		/* batch: log in on behalf of each
					 * mailbox */
	enum conf_auth_method method;	/* default authzid */
	char	*separator;		/* method separator; default "*" */
	bool	 allow_plaintext;	/* auth.allow_plaintext: send the
					 * password without TLS (protocol
					 * imap/pop3 requires it) */
	struct conf_oauth2 oauth2;	/* instead of a password */
	enum conf_auth_mech mechanism;	/* OAuth2 SASL mechanism */
};


/* One mailbox of a batch profile. */
struct conf_mailbox {
	char	*user;			/* the mailbox's login name */
	char	*archive_user;		/* default: user */
	char	*password_file;		/* own password (no master_user) */
	char	*source_file;		/* where it was listed, for messages */
	unsigned source_line;
};

struct conf_route {
	char	*pattern;		/* address glob with '*' */
	char	*user;			/* archive user */
};

/* multidrop: route each message of a catch-all mailbox to its people. */
struct conf_multidrop {
	bool	 enabled;
	char	**headers;		/* default Delivered-To, X-Original-To,
					 * X-Envelope-To, Envelope-To */
	size_t	 n_headers;
	char	**fall_back_to;		/* default To, Cc, Bcc, Resent-To,
					 * Resent-Cc */
	size_t	 n_fall_back_to;
	char	**local_domains;
	size_t	 n_local_domains;
	struct conf_route *recipients;	/* explicit routes, in file order */
	size_t	 n_recipients;
	char	 strip_detail;		/* e.g. '+'; 0: none */
	char	*unknown;		/* archive user, or NULL for "skip" */
	bool	 use_received;
};

struct conf_profile {
	char	*name;
	char	*archive_user;		/* default: auth.user */
	struct conf_server server;
	struct conf_auth auth;
	char	**folders_include;	/* NULL/0: every selectable folder */
	size_t	 n_folders_include;
	char	**folders_exclude;
	size_t	 n_folders_exclude;
	char	*schedule;		/* validated text; default "manual" */
	char	*timezone;		/* IANA name the schedule's wall times
					 * are in; NULL: the daemon's zone */
	uint32_t jitter_ms;		/* each fire delayed by a random time
					 * in [0, jitter); 0: none */
	bool	 catch_up;		/* run once at daemon start when a fire
					 * was missed; default true */
	uint64_t max_message_size;	/* default 256 MiB; larger: failed item */
	char	*source_file;		/* file and line of the profile entry */
	unsigned source_line;

	/*
	 * Batch: many mailboxes on one server instead of auth.user.  With
	 * auth.master_user the profile's password source is the master's;
	 * without it each mailbox has its own password_file.
	 */
	struct conf_mailbox *mailboxes;
	size_t	 n_mailboxes;
	char	*mailboxes_file;	/* re-read at every run */
	uint32_t max_parallel;		/* sessions at once, default 4 */
	struct conf_multidrop multidrop;
};

struct conf_daemon {
	uint32_t max_concurrent_runs;	/* default 8 */
	uint32_t max_connections_per_host; /* sessions to one server host
					 * over all runs; default 8 */
	char	*control_socket;	/* default /run/mailstow/control */
};

struct conf {
	char	*path;			/* the main file as given */
	char	*archive_path;		/* archive.path (required) */
	struct conf_daemon daemon;
	struct conf_profile *profiles;
	size_t	 n_profiles;
};

struct conf_error {
	char	text[1024];		/* "FILE:LINE:COL: KEY.PATH: what, fix" */
};

/*
 * Load and validate `path` and every conf.d/NAME.yaml beside it (sorted by name).
 * 0 and *ret on success (free with conf_free).  On failure -EINVAL (bad
 * content), -ENOENT / -EACCES (file), -EPERM (inline password in a file
 * readable by group or others) and err->text says which file, where, which
 * key and what to do.  Duplicate profile names are an error.
 */
int	conf_load(const char *path, struct conf **ret, struct conf_error *err);
void	conf_free(struct conf *);

/* The profile called `name`, or NULL. */
const struct conf_profile *conf_find_profile(const struct conf *, const char *name);

/*
 * Read the profile's password from whichever source it names.  A password
 * file must be a regular file (not a symlink owned by someone else) not
 * readable by group or others; a trailing newline is removed.  On success
 * *ret is a heap string the caller wipes with secret_free().  Errors as for
 * conf_load, with err->text naming the file and the fix (never the secret).
 */
int	conf_read_password(const struct conf_profile *p, char **ret,
	    struct conf_error *err);

/*
 * The mailboxes of a batch profile for this run: the `mailboxes:` list and
 * then every line of mailboxes_file ("user[,archive_user[,password_file]]",
 * '#' comments and blank lines skipped), read now.  A malformed line is
 * left out and described in `warnings` (malloc'ed strings naming file and
 * line; free with conf_strings_free); the rest is returned.  0 and
 * *ret and *ret_n (free with conf_mailboxes_free), or -errno with err->text
 * when the file cannot be read at all.  A single-mailbox profile yields
 * one entry made of auth.user and archive_user.
 */
int	conf_mailboxes_load(const struct conf_profile *p,
	    struct conf_mailbox **ret, size_t *ret_n, char ***warnings,
	    size_t *n_warnings, struct conf_error *err);
void	conf_mailboxes_free(struct conf_mailbox *, size_t n);
void	conf_strings_free(char **, size_t n);

/* A batch mailbox's own password_file, with conf_read_password()'s checks. */
int	conf_read_mailbox_password(const struct conf_profile *p,
	    const struct conf_mailbox *mb, char **ret, struct conf_error *err);

/*
 * Does folder `name` (UTF-8, hierarchy delimiter `delim`, 0 if none) pass
 * the profile's include and exclude patterns?  Patterns match the whole
 * name: '*' matches anything, '%' anything but the delimiter.  "INBOX" is
 * matched case-insensitively, everything else exactly.
 */
bool	conf_folder_selected(const struct conf_profile *p, const char *name,
	    char delim);
bool	conf_glob_match(const char *pattern, const char *name, char delim);

#endif
