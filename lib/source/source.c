/*
 * source.c - picks the protocol client for a profile and maps the
 * profile's settings and the login (password or OAuth2 token) onto that
 * client's parameters.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_client.h"
#include "pop3/pop3_client.h"
#include "source/source.h"

struct source {
	enum conf_protocol proto;
	struct imap_client *imap;
	struct pop3_client *pop3;
};

static void
source_net_params(const struct conf_profile *p, struct net_params *np)
{
	memset(np, 0, sizeof *np);
	np->host = p->server.host;
	np->port = p->server.port;
	switch (p->server.protocol) {
	case CONF_PROTO_IMAPS:
	case CONF_PROTO_POP3S:
		np->tls = NET_TLS_IMPLICIT;
		break;
	case CONF_PROTO_IMAP_STARTTLS:
	case CONF_PROTO_POP3_STARTTLS:
		np->tls = NET_TLS_STARTTLS;
		break;
	default:
		np->tls = NET_TLS_NONE;
		break;
	}
	np->ca_file = p->server.tls.ca_file;
	np->server_name = p->server.tls.server_name;
	np->verify = p->server.tls.verify;
	np->has_fingerprint = p->server.tls.has_fingerprint;
	memcpy(np->fingerprint, p->server.tls.fingerprint, sizeof np->fingerprint);
	np->timeout_ms = p->server.timeout_ms;
}

/* auth.mechanism in the clients' terms (they do not include conf/). */
static enum sasl_mech
source_mech(enum conf_auth_mech m)
{
	switch (m) {
	case CONF_MECH_XOAUTH2:
		return SASL_MECH_XOAUTH2;
	case CONF_MECH_OAUTHBEARER:
		return SASL_MECH_OAUTHBEARER;
	default:
		return SASL_MECH_AUTO;
	}
}

static int
source_start_imap(struct source *s, struct event_base *base,
    struct evdns_base *dns, const struct conf_profile *p,
    const struct source_login *login, const struct session_ops *ops,
    void *arg)
{
	struct imap_client_params ip;

	memset(&ip, 0, sizeof ip);
	source_net_params(p, &ip.net);
	ip.user = login->user;
	ip.authzid = login->authzid;
	ip.password = login->password;
	ip.oauth2_token = login->oauth2_token;
	ip.mech = source_mech(login->mech);
	ip.allow_plaintext = p->auth.allow_plaintext;
	ip.timeout_ms = p->server.timeout_ms;
	ip.max_message_size = p->max_message_size;
	return imap_client_start(base, dns, &ip, ops, arg, &s->imap);
}

static int
source_start_pop3(struct source *s, struct event_base *base,
    struct evdns_base *dns, const struct conf_profile *p,
    const struct source_login *login, const struct session_ops *ops,
    void *arg)
{
	struct pop3_client_params pp;

	memset(&pp, 0, sizeof pp);
	source_net_params(p, &pp.net);
	pp.user = login->user;
	pp.authzid = login->authzid;
	pp.password = login->password;
	pp.oauth2_token = login->oauth2_token;
	pp.mech = source_mech(login->mech);
	pp.allow_plaintext = p->auth.allow_plaintext;
	pp.apop = p->auth.apop;
	pp.timeout_ms = p->server.timeout_ms;
	pp.max_message_size = p->max_message_size;
	return pop3_client_start(base, dns, &pp, ops, arg, &s->pop3);
}

int
source_start(struct event_base *base, struct evdns_base *dns,
    const struct conf_profile *p, const struct source_login *login,
    const struct session_ops *ops, void *arg, struct source **ret)
{
	struct source *s;
	int err;

	if ((s = calloc(1, sizeof *s)) == NULL)
		return -ENOMEM;
	s->proto = p->server.protocol;
	if (conf_protocol_is_pop3(p->server.protocol))
		err = source_start_pop3(s, base, dns, p, login, ops, arg);
	else
		err = source_start_imap(s, base, dns, p, login, ops, arg);
	if (err < 0) {
		free(s);
		return err;
	}
	*ret = s;
	return 0;
}

void
source_pause(struct source *s)
{
	if (s == NULL)
		return;
	if (s->imap != NULL)
		imap_client_pause(s->imap);
	if (s->pop3 != NULL)
		pop3_client_pause(s->pop3);
}

void
source_resume(struct source *s)
{
	if (s == NULL)
		return;
	if (s->imap != NULL)
		imap_client_resume(s->imap);
	if (s->pop3 != NULL)
		pop3_client_resume(s->pop3);
}

void
source_cancel(struct source *s)
{
	if (s == NULL)
		return;
	if (s->imap != NULL)
		imap_client_cancel(s->imap);
	if (s->pop3 != NULL)
		pop3_client_cancel(s->pop3);
}

void
source_free(struct source *s)
{
	if (s == NULL)
		return;
	imap_client_free(s->imap);
	pop3_client_free(s->pop3);
	free(s);
}
