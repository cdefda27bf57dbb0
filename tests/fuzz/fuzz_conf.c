/*
 * fuzz_conf.c - libFuzzer target for the config loader: the input is
 * written to a config file in a private directory and loaded.  Whatever
 * the bytes, a load either fails with a FILE:... message or yields a
 * config that keeps the security rules.  Short inputs are also tried as a
 * schedule expression and as a folder pattern.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "sched/sched.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A directory of our own, so no conf.d of someone else's is read. */
static const char *
fuzz_path(void)
{
	static char dir[64], path[96];

	if (dir[0] == '\0') {
		snprintf(dir, sizeof dir, "/tmp/mailstow-fuzz-conf-XXXXXX");
		if (mkdtemp(dir) == NULL)
			abort();
		snprintf(path, sizeof path, "%s/mailstow.yaml", dir);
	}
	return path;
}

static void
fuzz_check_profile(const struct conf_profile *p)
{
	int sources = (p->auth.password != NULL) +
	    (p->auth.password_file != NULL) +
	    (p->auth.password_credential != NULL);
	const struct conf_tls *tls = &p->server.tls;
	char err[256];
	struct sched *s;

	if (p->name == NULL || p->server.host == NULL || p->auth.user == NULL ||
	    p->archive_user == NULL || p->schedule == NULL ||
	    p->server.port == 0 || sources != 1 || p->max_message_size == 0)
		abort();
	if ((p->server.protocol == CONF_PROTO_IMAP ||
	    p->server.protocol == CONF_PROTO_POP3) && !p->auth.allow_plaintext)
		abort();
	if (!tls->verify && (!tls->insecure_i_know || tls->has_fingerprint))
		abort();
	if (conf_protocol_is_pop3(p->server.protocol) ?
	    p->n_folders_include != 0 || p->n_folders_exclude != 0 :
	    p->auth.apop)
		abort();
	if (sched_parse(p->schedule, &s, err, sizeof err) != 0)
		abort();
	sched_free(s);
	(void)conf_folder_selected(p, "INBOX/Sub", '/');
}

static void
fuzz_conf(const uint8_t *data, size_t size)
{
	const char *path = fuzz_path();
	struct conf_error err;
	struct conf *c = NULL;
	size_t i;
	int fd, r;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (size > 0 && write(fd, data, size) != (ssize_t)size))
		abort();
	close(fd);
	r = conf_load(path, &c, &err);
	if (r < 0) {
		/* Mode 0600: an inline password is never refused here. */
		if (c != NULL || r == -EPERM ||
		    strncmp(err.text, path, strlen(path)) != 0)
			abort();
		return;
	}
	if (c->n_profiles > 10000 || c->archive_path == NULL ||
	    c->archive_path[0] != '/')
		abort();
	for (i = 0; i < c->n_profiles; i++) {
		fuzz_check_profile(&c->profiles[i]);
		if (conf_find_profile(c, c->profiles[i].name) !=
		    &c->profiles[i])
			abort();
	}
	conf_free(c);
}

static void
fuzz_sched(const char *text)
{
	static const char *const zones[] = { "UTC", "Europe/Berlin", NULL };
	char err[256];
	struct sched *s;
	time_t t, after = 1790000000;
	size_t i;

	if (sched_parse(text, &s, err, sizeof err) != 0)
		return;
	for (i = 0; i < 3; i++)
		if (sched_next(s, after, zones[i], &t) == 0 && t <= after)
			abort();
	sched_free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text, *nl;

	fuzz_conf(data, size);
	if (size > 512)
		return 0;
	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	fuzz_sched(text);
	/* "PATTERN\nNAME": the matcher must hold its bounds on any input. */
	if ((nl = strchr(text, '\n')) != NULL) {
		*nl = '\0';
		(void)conf_glob_match(text, nl + 1, '/');
		if (!conf_glob_match("*", nl + 1, '/'))
			abort();
	}
	free(text);
	return 0;
}
