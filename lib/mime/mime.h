/*
 * mime.h - reading fields of an RFC 5322 message header for the index,
 * parsing address lists and routing a multidrop message to archive users
 * by its header.  Bounded: header count, line length, field length and
 * address count have limits; nothing here trusts its input.
 */
#ifndef MAILSTOW_MIME_H
#define MAILSTOW_MIME_H

#include <stdbool.h>
#include <stddef.h>

struct mime_fields {
	/* UTF-8, unfolded, RFC 2047 encoded-words decoded where the RFC
	 * allows them (Subject, display names); control bytes removed;
	 * each at most 998 bytes; NULL when absent. */
	char	*message_id;
	char	*date;
	char	*from;
	char	*to;
	char	*subject;
};

/*
 * Parse the header block `hdr` (up to the first empty line or `len`).
 * Missing fields stay NULL; a malformed header is not an error (the message
 * is archived anyway).  0, or -ENOMEM.  Free with mime_fields_free().
 */
int	mime_header_fields(const char *hdr, size_t len, struct mime_fields *ret);
void	mime_fields_free(struct mime_fields *);

/*
 * The unfolded value of the first field `name` (case-insensitive), raw
 * bytes, malloc'ed, or NULL if absent. At most `max` bytes are kept.
 */
char	*mime_header_get(const char *hdr, size_t len, const char *name, size_t max);

struct mime_addr_list {
	char	**addrs;	/* "local@domain", lower-cased, local part unquoted when it is a dot-atom, else kept quoted */
	size_t	 n;
};

/*
 * Parse an RFC 5322 address-list (3.4): display names (quoted or not,
 * with RFC 2047 words, which are ignored), comments (nested), quoted local
 * parts, groups ("team: a@x, b@y;", "undisclosed-recipients:;") and the
 * obsolete forms of 4.4 (route addresses "<@a.b:user@c>", CFWS around the
 * dots of local part and domain, phrases with '.', empty list members).
 * The value may be folded or not; CR, LF and NUL never end it early.
 *
 * Each address becomes "local@domain", ASCII lower-cased; the local part
 * is unquoted when its content is a dot-atom (`"a.b"@x` -> a.b@x), else
 * it stays quoted with only '"' and '\' escaped.  UTF-8 (RFC 6532) is
 * kept; an address with a control byte, invalid UTF-8, a local part over
 * 256 bytes or a domain over 255 is skipped, as is one without a domain
 * (bare "user").  Malformed input never fails: each address that parses
 * is returned and junk up to the next ',' or ';' is skipped.  Recovery:
 * an unclosed '"', '(' or '[' counts as a stray character (so the rest of
 * the value still parses), an unclosed '<' ends at the next ','.  Linear
 * in `len`; the order of the value is kept, duplicates too.
 *
 * At most `max` addresses: one more is -E2BIG and nothing is returned.
 * 0 (ret->addrs NULL when ret->n is 0), -E2BIG, -ENOMEM.  Free with
 * mime_addr_list_free().
 */
int	mime_parse_addresses(const char *value, size_t len, size_t max,
	    struct mime_addr_list *ret);
void	mime_addr_list_free(struct mime_addr_list *);

/*
 * The address of a Received: field's "for" clause (RFC 5321 4.4:
 * "for <user@host>" or "for user@host", a source route dropped), in the
 * form mime_parse_addresses() gives, malloc'ed; NULL when there is none
 * (or out of memory).  "for" inside comments or glued to other text
 * (a host "for.example") does not count.
 */
char	*mime_received_for(const char *value, size_t len);

struct mime_route_rule {
	const char	*pattern;	/* glob with '*', matched case-insensitively against the whole address */
	const char	*user;
};

struct mime_route_conf {
	const char *const *headers;	/* e.g. Delivered-To, X-Original-To, X-Envelope-To, Envelope-To */
	size_t		 n_headers;
	const char *const *fallback;	/* e.g. To, Cc, Bcc, Resent-To, Resent-Cc */
	size_t		 n_fallback;
	const char *const *local_domains;
	size_t		 n_local_domains;
	const struct mime_route_rule *rules;	/* explicit routes, first match wins */
	size_t		 n_rules;
	char		 strip_detail;	/* e.g. '+': alice+news@ -> alice@; 0: none */
	const char	*unknown;	/* archive user for unknown recipients; NULL: skip them */
	bool		 use_received;	/* use Received: ... for <addr> when no `headers` field is present, before fall_back_to */
	size_t		 max_addresses;	/* bound over the whole message, e.g. 10000; 0: 10000 */
	size_t		 max_fields;	/* header fields scanned, e.g. 1000; 0: 1000 */
};

struct mime_route_result {
	char	**users;	/* distinct archive users, in first-seen order */
	size_t	  n_users;
	char	**unknown;	/* distinct addresses no rule or local domain matched */
	size_t	  n_unknown;
};

/*
 * Route one message by its header block `hdr` (up to the first empty line
 * or `len`).  The addresses come from the first source that has any:
 *  1. every instance of the first name in `headers` whose fields hold at
 *     least one address (a catch-all copy with several Delivered-To
 *     fields routes to all of them; an empty or junk field does not stop
 *     the search);
 *  2. with use_received, the "for" address of every Received field;
 *  3. all addresses of all fields named in `fallback`, in header order.
 * Each address (parsed as by mime_parse_addresses(), so lower-cased) has
 * its detail stripped: the local part from the first `strip_detail`
 * character up to the '@' (not when that character comes first).  Then
 * the first rule whose pattern matches the whole address gives its user
 * as written; else a domain in local_domains (case-insensitive, exact)
 * gives the local part as user, if it is a safe name: only [a-z0-9._-],
 * 1 to 64 bytes, not starting with '.' or '-', no "..", not ending in
 * '.'.  Anything else (a stranger, or a local part with quotes, '/',
 * unicode, or too long) is unknown: listed in `unknown` as parsed (detail
 * kept), and routed to conf->unknown when set, once; else to nobody.  A
 * message with no address at all is unknown too (routes to conf->unknown
 * when set; n_unknown stays 0).
 *
 * Bounded: at most max_fields fields per pass, max_addresses addresses
 * over the whole message (later ones are ignored).  All strings of the
 * result are malloc'ed; free with mime_route_result_free().  0 or
 * -ENOMEM; hostile input never fails otherwise.
 */
int	mime_route(const struct mime_route_conf *, const char *hdr, size_t len,
	    struct mime_route_result *ret);
void	mime_route_result_free(struct mime_route_result *);

#endif
