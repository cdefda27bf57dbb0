/*
 * conf_server.c - the server: mapping of a profile: host, port, protocol,
 * timeout and TLS.  The rules that keep a config secure by default live
 * here: certificate checks can only be turned off with an explicit
 * insecure_i_know, and never together with a pinned fingerprint.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/util.h"
#include "conf_private.h"

#define CONF_TIMEOUT_DEFAULT_MS	60000
#define CONF_TIMEOUT_MIN_MS	1000
#define CONF_TIMEOUT_MAX_MS	3600000
#define CONF_HOST_MAX		255

static const char *const conf_protocol_names[] = {
	[CONF_PROTO_IMAP] = "imap",
	[CONF_PROTO_IMAPS] = "imaps",
	[CONF_PROTO_IMAP_STARTTLS] = "imap+starttls",
	[CONF_PROTO_POP3] = "pop3",
	[CONF_PROTO_POP3S] = "pop3s",
	[CONF_PROTO_POP3_STARTTLS] = "pop3+starttls",
};
_Static_assert(NELEM(conf_protocol_names) == _CONF_PROTO_MAX,
    "one name per protocol");

static const uint16_t conf_protocol_ports[] = {
	[CONF_PROTO_IMAP] = 143,
	[CONF_PROTO_IMAPS] = 993,
	[CONF_PROTO_IMAP_STARTTLS] = 143,
	[CONF_PROTO_POP3] = 110,
	[CONF_PROTO_POP3S] = 995,
	[CONF_PROTO_POP3_STARTTLS] = 110,
};
_Static_assert(NELEM(conf_protocol_ports) == _CONF_PROTO_MAX,
    "one port per protocol");

static const char *const conf_server_keys[] = {
	"host", "port", "protocol", "timeout", "tls", NULL
};
static const char *const conf_tls_keys[] = {
	"ca_file", "server_name", "fingerprint", "verify", "insecure_i_know",
	NULL
};

const char *
conf_protocol_name(enum conf_protocol p)
{
	if ((unsigned)p >= _CONF_PROTO_MAX)
		return "unknown";
	return conf_protocol_names[p];
}

bool
conf_protocol_is_pop3(enum conf_protocol p)
{
	return p == CONF_PROTO_POP3 || p == CONF_PROTO_POP3S ||
	    p == CONF_PROTO_POP3_STARTTLS;
}

void
conf_server_clear(struct conf_server *s)
{
	free(s->host);
	free(s->tls.ca_file);
	free(s->tls.server_name);
	memset(s, 0, sizeof *s);
}

/* "sha256:" then 64 hex digits, or 32 colon-separated pairs as
 * `openssl x509 -fingerprint -sha256` prints them. */
static int
conf_parse_fingerprint(const char *s, uint8_t out[32])
{
	char hex[65];
	size_t len, i;

	if (strncasecmp(s, "sha256:", 7) != 0)
		return -EINVAL;
	s += 7;
	len = strlen(s);
	if (len == 64)
		return hex_decode(s, out, 32);
	if (len != 32 * 3 - 1)
		return -EINVAL;
	for (i = 0; i < 32; i++) {
		if (i < 31 && s[3 * i + 2] != ':')
			return -EINVAL;
		hex[2 * i] = s[3 * i];
		hex[2 * i + 1] = s[3 * i + 1];
	}
	hex[64] = '\0';
	return hex_decode(hex, out, 32);
}

static int
conf_tls_values(struct conf_ctx *ctx, const struct conf_node *m,
    const char *path, struct conf_tls *tls)
{
	const struct conf_node *v;
	char kp[CONF_MAX_PATH];
	int r;

	conf_path(kp, sizeof kp, path, "ca_file");
	if ((v = conf_map_get(m, "ca_file")) != NULL &&
	    (r = conf_get_abs_path(ctx, v, kp, &tls->ca_file)) < 0)
		return r;
	conf_path(kp, sizeof kp, path, "server_name");
	if ((v = conf_map_get(m, "server_name")) != NULL &&
	    (r = conf_get_str(ctx, v, kp, &tls->server_name)) < 0)
		return r;
	conf_path(kp, sizeof kp, path, "verify");
	if ((v = conf_map_get(m, "verify")) != NULL &&
	    (r = conf_get_bool(ctx, v, kp, &tls->verify)) < 0)
		return r;
	conf_path(kp, sizeof kp, path, "insecure_i_know");
	if ((v = conf_map_get(m, "insecure_i_know")) != NULL &&
	    (r = conf_get_bool(ctx, v, kp, &tls->insecure_i_know)) < 0)
		return r;
	conf_path(kp, sizeof kp, path, "fingerprint");
	if ((v = conf_map_get(m, "fingerprint")) != NULL) {
		if (v->type != CONF_NODE_SCALAR || strlen(v->str) != v->len ||
		    conf_parse_fingerprint(v->str, tls->fingerprint) < 0)
			return conf_errorf(ctx, v, kp, -EINVAL,
			    "expected \"sha256:\" and 64 hex digits (or 32 "
			    "colon-separated pairs); get it with openssl "
			    "x509 -noout -fingerprint -sha256 -in CERT");
		tls->has_fingerprint = true;
	}
	return 0;
}

static int
conf_parse_tls(struct conf_ctx *ctx, const struct conf_node *node,
    const char *path, struct conf_tls *tls)
{
	const struct conf_node *m;
	char kp[CONF_MAX_PATH];
	int r;

	if ((r = conf_expect_map(ctx, node, path, "ca_file, server_name, "
	    "fingerprint, verify", &m)) < 0)
		return r;
	if ((r = conf_check_keys(ctx, m, path, conf_tls_keys)) < 0)
		return r;
	if ((r = conf_tls_values(ctx, m, path, tls)) < 0)
		return r;
	if (!tls->verify && tls->has_fingerprint) {
		conf_path(kp, sizeof kp, path, "verify");
		return conf_errorf(ctx, conf_map_get(m, "verify"), kp, -EINVAL,
		    "verify: false and a fingerprint contradict each other; "
		    "remove verify: false, the pinned fingerprint is "
		    "checked instead of the certificate chain");
	}
	if (!tls->verify && !tls->insecure_i_know) {
		conf_path(kp, sizeof kp, path, "verify");
		return conf_errorf(ctx, conf_map_get(m, "verify"), kp, -EINVAL,
		    "verify: false lets anyone between us and the server "
		    "read the password; pin the certificate with "
		    "fingerprint: \"sha256:...\" instead, or add "
		    "insecure_i_know: true");
	}
	return 0;
}

static int
conf_parse_protocol(struct conf_ctx *ctx, const struct conf_node *v,
    const char *path, enum conf_protocol *ret)
{
	char show[72];
	size_t i;

	for (i = 0; v->type == CONF_NODE_SCALAR && i < _CONF_PROTO_MAX; i++) {
		if (strlen(v->str) == v->len &&
		    strcmp(v->str, conf_protocol_names[i]) == 0) {
			*ret = (enum conf_protocol)i;
			return 0;
		}
	}
	conf_show(v, show, sizeof show);
	return conf_errorf(ctx, v, path, -EINVAL,
	    "unknown protocol '%s'; use one of imap, imaps, imap+starttls, "
	    "pop3, pop3s, pop3+starttls", show);
}

static int
conf_parse_host(struct conf_ctx *ctx, const struct conf_node *v,
    const char *path, char **ret)
{
	char *h;
	int r;

	if ((r = conf_get_str(ctx, v, path, &h)) < 0)
		return r;
	if (strlen(h) > CONF_HOST_MAX || strpbrk(h, " \t/") != NULL) {
		free(h);
		return conf_errorf(ctx, v, path, -EINVAL,
		    "not a host name or address; write e.g. imap.example.com "
		    "(no scheme, no port, no spaces)");
	}
	*ret = h;
	return 0;
}

static int
conf_server_values(struct conf_ctx *ctx, const struct conf_node *m,
    const struct conf_node *at, const char *path, struct conf_server *srv)
{
	const struct conf_node *v;
	char kp[CONF_MAX_PATH];
	uint32_t port;
	int r;

	conf_path(kp, sizeof kp, path, "host");
	if ((r = conf_require(ctx, m, at, path, "host", &v)) < 0 ||
	    (r = conf_parse_host(ctx, v, kp, &srv->host)) < 0)
		return r;
	conf_path(kp, sizeof kp, path, "protocol");
	if ((r = conf_require(ctx, m, at, path, "protocol", &v)) < 0 ||
	    (r = conf_parse_protocol(ctx, v, kp, &srv->protocol)) < 0)
		return r;
	srv->port = conf_protocol_ports[srv->protocol];
	conf_path(kp, sizeof kp, path, "port");
	if ((v = conf_map_get(m, "port")) != NULL) {
		if ((r = conf_get_u32(ctx, v, kp, 1, 65535, &port)) < 0)
			return r;
		srv->port = (uint16_t)port;
	}
	srv->timeout_ms = CONF_TIMEOUT_DEFAULT_MS;
	conf_path(kp, sizeof kp, path, "timeout");
	if ((v = conf_map_get(m, "timeout")) != NULL &&
	    (r = conf_get_duration_ms(ctx, v, kp, CONF_TIMEOUT_MIN_MS,
	    CONF_TIMEOUT_MAX_MS, &srv->timeout_ms)) < 0)
		return r;
	return 0;
}

int
conf_parse_server(struct conf_ctx *ctx, const struct conf_node *node,
    const char *path, struct conf_server *srv)
{
	const struct conf_node *m, *v;
	char kp[CONF_MAX_PATH];
	int r;

	if ((r = conf_expect_map(ctx, node, path, "host, port, protocol, "
	    "timeout, tls", &m)) < 0)
		return r;
	if ((r = conf_check_keys(ctx, m, path, conf_server_keys)) < 0)
		return r;
	if ((r = conf_server_values(ctx, m, node, path, srv)) < 0)
		return r;
	srv->tls.verify = true;
	if ((v = conf_map_get(m, "tls")) == NULL)
		return 0;
	conf_path(kp, sizeof kp, path, "tls");
	if (srv->protocol == CONF_PROTO_IMAP || srv->protocol == CONF_PROTO_POP3)
		return conf_errorf(ctx, v, kp, -EINVAL,
		    "protocol %s does not use TLS, so tls: has no effect; "
		    "use %ss or %s+starttls, or remove tls:",
		    conf_protocol_name(srv->protocol),
		    conf_protocol_name(srv->protocol),
		    conf_protocol_name(srv->protocol));
	return conf_parse_tls(ctx, v, kp, &srv->tls);
}
