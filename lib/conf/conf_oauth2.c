/*
 * conf_oauth2.c - auth.oauth2 and auth.mechanism: which provider issues a
 * profile's tokens, resolved here from the microsoft/google presets and
 * the user's overrides into final endpoints and scope, and the rules that
 * keep an OAuth2 profile from also naming a password or a master user.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "conf_private.h"

#define CONF_OAUTH2_URL_MAX	2048

static const char *const conf_oauth2_keys[] = {
	"provider", "tenant", "client_id", "client_secret_file", "flow",
	"token_endpoint", "device_authorization_endpoint", "scope", "ca_file",
	NULL
};

/*
 * Endpoints and scopes of the presets.  "%s" is the tenant (Microsoft).
 * Microsoft's app-only scope is the resource's ".default"; a user's
 * delegated scopes need offline_access to get a refresh token.
 */
struct conf_oauth2_preset {
	const char *name;
	const char *token, *device;
	const char *scope_user, *scope_app;
};

static const struct conf_oauth2_preset conf_oauth2_presets[] = {
	{ "microsoft",
	  "https://login.microsoftonline.com/%s/oauth2/v2.0/token",
	  "https://login.microsoftonline.com/%s/oauth2/v2.0/devicecode",
	  "https://outlook.office365.com/IMAP.AccessAsUser.All "
	  "https://outlook.office365.com/POP.AccessAsUser.All offline_access",
	  "https://outlook.office365.com/.default" },
	{ "google",
	  "https://oauth2.googleapis.com/token",
	  "https://oauth2.googleapis.com/device/code",
	  "https://mail.google.com/",
	  "https://mail.google.com/" },
};

void
conf_oauth2_clear(struct conf_oauth2 *o)
{
	free(o->provider);
	free(o->tenant);
	free(o->client_id);
	free(o->client_secret_file);
	free(o->token_endpoint);
	free(o->device_authorization_endpoint);
	free(o->scope);
	free(o->ca_file);
	memset(o, 0, sizeof *o);
}

static const struct conf_oauth2_preset *
conf_oauth2_preset(const char *name)
{
	size_t i;

	for (i = 0; i < NELEM(conf_oauth2_presets); i++)
		if (strcmp(conf_oauth2_presets[i].name, name) == 0)
			return &conf_oauth2_presets[i];
	return NULL;
}

/* An endpoint is an https:// URL with a host, no credentials, no space. */
static int
conf_oauth2_url(struct conf_ctx *ctx, const struct conf_node *v,
    const char *path, char **ret)
{
	const char *host, *s;
	char *u;
	int r;

	if ((r = conf_get_str(ctx, v, path, &u)) < 0)
		return r;
	host = u + strlen("https://");
	if (strncmp(u, "https://", 8) != 0 || *host == '\0' || *host == '/' ||
	    strlen(u) > CONF_OAUTH2_URL_MAX) {
		free(u);
		return conf_errorf(ctx, v, path, -EINVAL, "not an https:// "
		    "URL; tokens travel only over verified TLS");
	}
	for (s = u; *s != '\0'; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			break;
	if (*s != '\0' || memchr(host, '@', strcspn(host, "/")) != NULL) {
		free(u);
		return conf_errorf(ctx, v, path, -EINVAL, "the URL holds a "
		    "space, a control character or user@ credentials; give "
		    "the plain endpoint URL");
	}
	*ret = u;
	return 0;
}

static int
conf_oauth2_flow(struct conf_ctx *ctx, const struct conf_node *v,
    const char *path, struct conf_oauth2 *o)
{
	char *s;
	int r;

	if ((r = conf_get_str(ctx, v, path, &s)) < 0)
		return r;
	r = strcmp(s, "refresh_token") == 0 ? CONF_OAUTH2_REFRESH_TOKEN :
	    strcmp(s, "client_credentials") == 0 ?
	    CONF_OAUTH2_CLIENT_CREDENTIALS : -1;
	free(s);
	if (r < 0)
		return conf_errorf(ctx, v, path, -EINVAL, "flow is "
		    "refresh_token (a user signs in once with `mailstow oauth2 "
		    "login`) or client_credentials (app-only access)");
	o->flow = (enum conf_oauth2_flow)r;
	return 0;
}

/* A preset's URL with the tenant put in. */
static int
conf_oauth2_fill(const char *fmt, const char *tenant, char **ret)
{
	if (*ret != NULL || fmt == NULL)
		return 0;
	const char *at = strstr(fmt, "%s");
	size_t len;

	if (at == NULL) {
		*ret = strdup(fmt);
		return *ret == NULL ? -ENOMEM : 0;
	}
	len = strlen(fmt) - 2 + strlen(tenant) + 1;
	if ((*ret = malloc(len)) == NULL)
		return -ENOMEM;
	snprintf(*ret, len, "%.*s%s%s", (int)(at - fmt), fmt, tenant, at + 2);
	return 0;
}

static int
conf_oauth2_tenant(struct conf_ctx *ctx, const struct conf_node *v,
    const char *path, char **ret)
{
	const char *s;
	int r;

	if ((r = conf_get_str(ctx, v, path, ret)) < 0)
		return r;
	for (s = *ret; *s != '\0'; s++)
		if (!(isalnum((unsigned char)*s) || *s == '-' || *s == '.' ||
		    *s == '_'))
			break;
	if (**ret != '\0' && *s == '\0' && strlen(*ret) <= 255)
		return 0;
	return conf_errorf(ctx, v, path, -EINVAL, "not a tenant: give the "
	    "tenant's domain (example.onmicrosoft.com) or its ID");
}

/* Every string key of auth.oauth2, each with its own rule. */
static int
conf_oauth2_strings(struct conf_ctx *ctx, const struct conf_node *m,
    const char *path, struct conf_oauth2 *o)
{
	const struct conf_node *v;
	char kp[CONF_MAX_PATH];
	int r = 0;

#define GET(key, fn, dst) do {						\
	conf_path(kp, sizeof kp, path, key);				\
	if ((v = conf_map_get(m, key)) != NULL &&			\
	    (r = fn(ctx, v, kp, dst)) < 0)				\
		return r;						\
} while (0)
	GET("provider", conf_get_str, &o->provider);
	GET("tenant", conf_oauth2_tenant, &o->tenant);
	GET("client_id", conf_get_str, &o->client_id);
	GET("client_secret_file", conf_get_abs_path, &o->client_secret_file);
	GET("token_endpoint", conf_oauth2_url, &o->token_endpoint);
	GET("device_authorization_endpoint", conf_oauth2_url,
	    &o->device_authorization_endpoint);
	GET("scope", conf_get_str, &o->scope);
	GET("ca_file", conf_get_abs_path, &o->ca_file);
#undef GET
	return r;
}

/* Presets fill what the user did not give; then everything must be set. */
static int
conf_oauth2_resolve(struct conf_ctx *ctx, const struct conf_node *m,
    const char *path, struct conf_oauth2 *o)
{
	const struct conf_oauth2_preset *pre = NULL;
	bool app = o->flow == CONF_OAUTH2_CLIENT_CREDENTIALS;
	int r;

	if (o->provider != NULL &&
	    (pre = conf_oauth2_preset(o->provider)) == NULL)
		return conf_errorf(ctx, conf_map_get(m, "provider"), path,
		    -EINVAL, "unknown provider '%s'; use microsoft or google, "
		    "or omit provider: and give token_endpoint: and scope:",
		    o->provider);
	if (pre != NULL && strcmp(pre->name, "microsoft") == 0 &&
	    o->tenant == NULL &&
	    (o->tenant = strdup(app ? "" : "organizations")) == NULL)
		return -ENOMEM;
	if (pre != NULL && strcmp(pre->name, "microsoft") == 0 && app &&
	    (*o->tenant == '\0' || strcmp(o->tenant, "common") == 0 ||
	    strcmp(o->tenant, "organizations") == 0))
		return conf_errorf(ctx, m, path, -EINVAL, "client_credentials "
		    "with Microsoft needs the tenant: add tenant: "
		    "example.onmicrosoft.com (or the tenant ID)");
	if (pre != NULL &&
	    ((r = conf_oauth2_fill(pre->token, o->tenant,
	    &o->token_endpoint)) < 0 ||
	    (!app && (r = conf_oauth2_fill(pre->device, o->tenant,
	    &o->device_authorization_endpoint)) < 0) ||
	    (r = conf_oauth2_fill(app ? pre->scope_app : pre->scope_user,
	    NULL, &o->scope)) < 0))
		return r;
	if (o->client_id == NULL)
		return conf_errorf(ctx, m, path, -EINVAL, "no client_id; give "
		    "the application (client) ID registered with the provider");
	if (o->token_endpoint == NULL || o->scope == NULL)
		return conf_errorf(ctx, m, path, -EINVAL, "no %s; give "
		    "provider: microsoft or google, or %s: yourself",
		    o->token_endpoint == NULL ? "token_endpoint" : "scope",
		    o->token_endpoint == NULL ? "token_endpoint" : "scope");
	if (!app && o->device_authorization_endpoint == NULL)
		return conf_errorf(ctx, m, path, -EINVAL, "flow refresh_token "
		    "signs in with the device-code flow: give "
		    "device_authorization_endpoint: (or a provider:)");
	if (app && o->client_secret_file == NULL)
		return conf_errorf(ctx, m, path, -EINVAL, "client_credentials "
		    "needs the application's secret: add client_secret_file:");
	return 0;
}

static int
conf_oauth2_mechanism(struct conf_ctx *ctx, const struct conf_node *v,
    const char *path, struct conf_auth *a)
{
	char *s;
	int r;

	if ((r = conf_get_str(ctx, v, path, &s)) < 0)
		return r;
	r = strcmp(s, "auto") == 0 ? CONF_MECH_AUTO :
	    strcmp(s, "xoauth2") == 0 ? CONF_MECH_XOAUTH2 :
	    strcmp(s, "oauthbearer") == 0 ? CONF_MECH_OAUTHBEARER : -1;
	free(s);
	if (r < 0)
		return conf_errorf(ctx, v, path, -EINVAL, "mechanism is auto "
		    "(OAUTHBEARER when offered, else XOAUTH2), xoauth2 or "
		    "oauthbearer");
	a->mechanism = (enum conf_auth_mech)r;
	return 0;
}

/* What an OAuth2 profile may not also have. */
static int
conf_oauth2_exclusive(struct conf_ctx *ctx, const struct conf_node *auth,
    const char *path)
{
	static const char *const no[] = {
		"password_file", "password", "password_credential",
		"master_user", "apop",
	};
	char kp[CONF_MAX_PATH];
	size_t i;

	for (i = 0; i < NELEM(no); i++) {
		const struct conf_node *v = conf_map_get(auth, no[i]);

		if (v == NULL)
			continue;
		conf_path(kp, sizeof kp, path, no[i]);
		return conf_errorf(ctx, v, kp, -EINVAL, "auth.oauth2 replaces "
		    "passwords and master users; remove %s: (app-only "
		    "access to many mailboxes is flow: client_credentials)",
		    no[i]);
	}
	return 0;
}

int
conf_parse_oauth2(struct conf_ctx *ctx, const struct conf_node *auth,
    const char *path, struct conf_auth *a)
{
	const struct conf_node *node, *m, *v;
	char kp[CONF_MAX_PATH];
	int r;

	conf_path(kp, sizeof kp, path, "mechanism");
	if ((v = conf_map_get(auth, "mechanism")) != NULL &&
	    conf_map_get(auth, "oauth2") == NULL)
		return conf_errorf(ctx, v, kp, -EINVAL, "mechanism picks the "
		    "OAuth2 SASL mechanism; add oauth2: or remove mechanism:");
	if (v != NULL && (r = conf_oauth2_mechanism(ctx, v, kp, a)) < 0)
		return r;
	if ((node = conf_map_get(auth, "oauth2")) == NULL)
		return 0;
	conf_path(kp, sizeof kp, path, "oauth2");
	if ((r = conf_oauth2_exclusive(ctx, auth, path)) < 0 ||
	    (r = conf_expect_map(ctx, node, kp, "client_id, provider, ...",
	    &m)) < 0 || (r = conf_check_keys(ctx, m, kp, conf_oauth2_keys)) < 0)
		return r;
	a->oauth2.enabled = true;
	if ((v = conf_map_get(m, "flow")) != NULL) {
		char fp[CONF_MAX_PATH];

		conf_path(fp, sizeof fp, kp, "flow");
		if ((r = conf_oauth2_flow(ctx, v, fp, &a->oauth2)) < 0)
			return r;
	}
	if ((r = conf_oauth2_strings(ctx, m, kp, &a->oauth2)) < 0)
		return r;
	return conf_oauth2_resolve(ctx, m, kp, &a->oauth2);
}

/* Once the whole profile is known: a batch logs in app-only or not at all. */
int
conf_check_oauth2(struct conf_ctx *ctx, const struct conf_node *auth,
    const char *path, const struct conf_profile *p)
{
	char kp[CONF_MAX_PATH];

	if (!p->auth.oauth2.enabled)
		return 0;
	conf_path(kp, sizeof kp, path, "auth.oauth2.flow");
	if ((p->mailboxes != NULL || p->mailboxes_file != NULL) &&
	    p->auth.oauth2.flow != CONF_OAUTH2_CLIENT_CREDENTIALS)
		return conf_errorf(ctx, conf_map_get(auth, "oauth2"), kp,
		    -EINVAL, "a batch profile (mailboxes:) logs in app-only: "
		    "set flow: client_credentials, or make one profile per "
		    "mailbox with flow: refresh_token");
	if (p->mailboxes == NULL && p->mailboxes_file == NULL &&
	    p->auth.user == NULL)
		return conf_errorf(ctx, auth, path, -EINVAL, "an OAuth2 login "
		    "names its mailbox: add user:");
	return 0;
}
