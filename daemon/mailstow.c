/*
 * mailstow.c - the command-line tool: validate the config, run profiles
 * now and print their protocol, and read the archive (runs, protocols,
 * messages, raw message bytes).  Exit status: 0 every run succeeded, 1 a
 * run failed or completed with errors, 2 usage or configuration error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "base/log.h"
#include "base/loop_probe.h"
#include "base/util.h"
#include "conf/conf.h"
#include "ctl/ctl.h"
#include "run/run.h"
#include "store/store.h"

#include "mailstow.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: mailstow [-c FILE] [-v] COMMAND [ARGS]\n"
	    "\n"
	    "  check                                 validate the configuration\n"
	    "  status [--json]                       what the daemon runs and plans\n"
	    "  reload                                make the daemon re-read its config\n"
	    "  run [--json] PROFILE [PROFILE...]     archive now, print the protocol\n"
	    "  runs [--profile P] [--json]           list past runs\n"
	    "  protocol (RUN_ID | --last PROFILE) [--json]\n"
	    "  messages ARCHIVE_USER [--folder F] [--json]\n"
	    "  show SHA256                           raw message to stdout\n"
	    "  oauth2 login PROFILE                  sign in once (device code)\n"
	    "  oauth2 status [--json]                the OAuth2 tokens we hold\n"
	    "\n"
	    "-c defaults to $MAILSTOW_CONFIG, then /etc/mailstow/mailstow.yaml.\n"
	    "Exit status: 0 success, 1 a run failed or had errors, 2 usage or\n"
	    "configuration error.  See mailstow(1).\n");
}

static int
cli_load_conf(struct cli *cli)
{
	struct conf_error err;
	int r;

	if ((r = conf_load(cli->config, &cli->conf, &err)) < 0) {
		fprintf(stderr, "mailstow: %s\n", err.text);
		return EXIT_USAGE;
	}
	return 0;
}

static int
cli_open_store(struct cli *cli, enum store_open_flags flags, struct store **ret)
{
	char err[512];

	if (store_open(cli->conf->archive_path, flags, ret, err, sizeof err) < 0) {
		fprintf(stderr, "mailstow: %s\n", err);
		return EXIT_RUN_FAILED;
	}
	return 0;
}

/* Can every password this profile needs be read safely now? */
static int
cli_check_profile(const struct conf_profile *p)
{
	struct conf_mailbox *mb;
	struct conf_error err;
	char **warn, *pw = NULL;
	size_t i, n, n_warn;
	int rc = 0;

	/* Tokens are checked by `mailstow oauth2 status`, not here. */
	if (!p->auth.oauth2.enabled &&
	    (p->auth.user != NULL || p->auth.master_user != NULL)) {
		if (conf_read_password(p, &pw, &err) < 0) {
			fprintf(stderr, "mailstow: %s\n", err.text);
			return -1;
		}
		secret_free(pw);
	}
	if (conf_mailboxes_load(p, &mb, &n, &warn, &n_warn, &err) < 0) {
		fprintf(stderr, "mailstow: %s\n", err.text);
		return -1;
	}
	for (i = 0; i < n_warn; i++, rc = -1)
		fprintf(stderr, "mailstow: %s\n", warn[i]);
	for (i = 0; i < n; i++) {
		if (mb[i].password_file == NULL)
			continue;
		if (conf_read_mailbox_password(p, &mb[i], &pw, &err) < 0) {
			fprintf(stderr, "mailstow: %s\n", err.text);
			rc = -1;
		}
		secret_free(pw);
		pw = NULL;
	}
	conf_strings_free(warn, n_warn);
	conf_mailboxes_free(mb, n);
	return rc;
}

static int
cmd_check(struct cli *cli, int argc, char **argv)
{
	size_t i;
	int rc = 0;

	if (argc != 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	for (i = 0; i < cli->conf->n_profiles; i++)
		if (cli_check_profile(&cli->conf->profiles[i]) < 0)
			rc = EXIT_USAGE;
	if (rc == 0)
		printf("%s: configuration is valid (%zu profiles, archive %s)\n",
		    cli->conf->path, cli->conf->n_profiles,
		    cli->conf->archive_path);
	return rc;
}

/* ---- run ------------------------------------------------------------- */

struct cli_run {
	struct event_base *base;
	struct run *run;
	struct run_result result;
	bool	 over;
};

static void
cli_run_done(struct run *run, const struct run_result *res, void *arg)
{
	struct cli_run *cr = arg;

	cr->result = *res;
	cr->over = true;
	event_base_loopbreak(cr->base);
}

static void
cli_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct cli_run *cr = arg;

	if (cr->run != NULL && !cr->over)
		run_cancel(cr->run);
}

static struct evdns_base *
cli_dns(struct event_base *base)
{
	struct evdns_base *dns;

	dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
	    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (dns == NULL) {
		/* No resolv.conf: /etc/hosts and address literals still work. */
		dns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
		if (dns != NULL)
			evdns_base_load_hosts(dns, NULL);
	}
	return dns;
}

static int
cli_run_one(struct cli *cli, struct store *store, struct event_base *base,
    struct evdns_base *dns, const struct conf_profile *p)
{
	struct cli_run cr = { .base = base };
	struct run_params rp = {
		.base = base, .dns = dns, .store = store, .profile = p,
		.trigger = "manual",
	};
	struct event *sigint, *sigterm;
	int err;

	sigint = evsignal_new(base, SIGINT, cli_on_signal, &cr);
	sigterm = evsignal_new(base, SIGTERM, cli_on_signal, &cr);
	if (sigint == NULL || sigterm == NULL)
		return EXIT_RUN_FAILED;
	evsignal_add(sigint, NULL);
	evsignal_add(sigterm, NULL);
	if ((err = run_start(&rp, cli_run_done, &cr, &cr.run)) < 0) {
		fprintf(stderr, "mailstow: %s: could not start a run: %s\n",
		    p->name, strerror(-err));
		event_free(sigint);
		event_free(sigterm);
		return EXIT_RUN_FAILED;
	}
	while (!cr.over && event_base_dispatch(base) == 0)
		;
	event_free(sigint);
	event_free(sigterm);
	run_free(cr.run);
	if (!cr.over)
		return EXIT_RUN_FAILED;
	store_print_protocol(store, cr.result.run_id, cli->json, stdout);
	if (!cli->json)
		putchar('\n');
	fflush(stdout);
	return strcmp(cr.result.status, "succeeded") == 0 ? 0 : EXIT_RUN_FAILED;
}

/*
 * The daemon holds the archive: let it do the run, wait, and print the
 * protocol from a read-only view of the archive.
 */
static int
cli_run_via_daemon(struct cli *cli, const char *profile)
{
	char status[64], err[512];
	struct store *store;
	int64_t id;
	int r;

	r = ctl_run(cli->conf->daemon.control_socket, profile,
	    cli->json ? NULL : stderr, &id, status, sizeof status, err,
	    sizeof err);
	if (r < 0) {
		fprintf(stderr, "mailstow: %s: %s\n", profile, err);
		return EXIT_RUN_FAILED;
	}
	if ((r = cli_open_store(cli, STORE_RDONLY, &store)) != 0)
		return r;
	store_print_protocol(store, id, cli->json, stdout);
	if (!cli->json)
		putchar('\n');
	fflush(stdout);
	store_close(store);
	return strcmp(status, "succeeded") == 0 ? 0 : EXIT_RUN_FAILED;
}

/*
 * MAILSTOW_LOOP_PROBE=1 measures how late the loop serves a 10 ms timer
 * during the runs (make bench's stall figure) and prints it on stderr.
 */
static struct loop_probe *
cli_probe_start(struct event_base *base)
{
	struct loop_probe *lp = NULL;
	const char *e = getenv("MAILSTOW_LOOP_PROBE");

	if (e != NULL && strcmp(e, "1") == 0 &&
	    loop_probe_start(base, 10, &lp) < 0)
		fprintf(stderr, "mailstow: cannot start the loop probe\n");
	return lp;
}

static void
cli_probe_end(struct loop_probe *lp)
{
	struct loop_probe_stats st;
	char line[512];

	if (lp == NULL)
		return;
	loop_probe_stats(lp, &st);
	loop_probe_format(&st, line, sizeof line);
	fprintf(stderr, "mailstow: %s\n", line);
	loop_probe_free(lp);
}

static int
cmd_run(struct cli *cli, int argc, char **argv)
{
	struct event_base *base;
	struct evdns_base *dns;
	struct loop_probe *probe;
	struct store *store;
	int i, rc = 0;

	if (argc < 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	for (i = 0; i < argc; i++)
		if (conf_find_profile(cli->conf, argv[i]) == NULL) {
			fprintf(stderr, "mailstow: %s: no profile '%s' (see "
			    "'profiles:' in the configuration)\n",
			    cli->conf->path, argv[i]);
			return EXIT_USAGE;
		}
	if (ctl_probe(cli->conf->daemon.control_socket) == 0) {
		for (i = 0; i < argc; i++)
			if (cli_run_via_daemon(cli, argv[i]) != 0)
				rc = EXIT_RUN_FAILED;
		return rc;
	}
	if ((rc = cli_open_store(cli, STORE_RDWR, &store)) != 0)
		return rc;
	base = event_base_new();
	dns = base != NULL ? cli_dns(base) : NULL;
	if (dns == NULL) {
		fprintf(stderr, "mailstow: cannot set up the event loop\n");
		store_close(store);
		return EXIT_RUN_FAILED;
	}
	probe = cli_probe_start(base);
	for (i = 0; i < argc; i++)
		if (cli_run_one(cli, store, base, dns,
		    conf_find_profile(cli->conf, argv[i])) != 0)
			rc = EXIT_RUN_FAILED;
	cli_probe_end(probe);
	evdns_base_free(dns, 0);
	/* First: the store's writer thread has an event on the base. */
	store_close(store);
	event_base_free(base);
	return rc;
}

/* ---- the daemon --------------------------------------------------------- */

static int
cmd_status(struct cli *cli, int argc, char **argv)
{
	char err[512];

	if (argc != 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (ctl_status(cli->conf->daemon.control_socket, cli->json, stdout,
	    err, sizeof err) < 0) {
		fprintf(stderr, "mailstow: %s (is mailstowd running? "
		    "systemctl status mailstowd)\n", err);
		return EXIT_RUN_FAILED;
	}
	return 0;
}

static int
cmd_reload(struct cli *cli, int argc, char **argv)
{
	char err[1024];
	int r;

	if (argc != 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if ((r = ctl_reload(cli->conf->daemon.control_socket, err,
	    sizeof err)) < 0) {
		fprintf(stderr, "mailstow: %s\n", err);
		return r == -EINVAL ? EXIT_USAGE : EXIT_RUN_FAILED;
	}
	printf("mailstowd reloaded its configuration\n");
	return 0;
}

/* ---- reading ---------------------------------------------------------- */

static int
cmd_runs(struct cli *cli, int argc, char **argv)
{
	struct store *store;
	int rc;

	if (argc != 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if ((rc = cli_open_store(cli, STORE_RDONLY, &store)) != 0)
		return rc;
	if (store_print_runs(store, cli->profile, cli->json, stdout) < 0)
		rc = EXIT_RUN_FAILED;
	store_close(store);
	return rc;
}

static int
cmd_protocol(struct cli *cli, int argc, char **argv)
{
	struct store *store;
	int64_t id = 0;
	uint64_t v;
	int rc;

	if ((cli->profile == NULL) == (argc != 1) || argc > 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (argc == 1) {
		if (parse_u64(argv[0], strlen(argv[0]), &v) < 0 ||
		    v > INT64_MAX) {
			fprintf(stderr, "mailstow: '%s' is not a run id\n",
			    argv[0]);
			return EXIT_USAGE;
		}
		id = (int64_t)v;
	}
	if ((rc = cli_open_store(cli, STORE_RDONLY, &store)) != 0)
		return rc;
	if (cli->profile != NULL &&
	    store_last_run(store, cli->profile, &id) < 0) {
		fprintf(stderr, "mailstow: profile '%s' has no runs yet\n",
		    cli->profile);
		rc = EXIT_RUN_FAILED;
	} else if (store_print_protocol(store, id, cli->json, stdout) < 0) {
		fprintf(stderr, "mailstow: no run %lld\n", (long long)id);
		rc = EXIT_RUN_FAILED;
	}
	store_close(store);
	return rc;
}

static int
cmd_messages(struct cli *cli, int argc, char **argv)
{
	struct store *store;
	int rc;

	if (argc != 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if ((rc = cli_open_store(cli, STORE_RDONLY, &store)) != 0)
		return rc;
	if (store_print_messages(store, argv[0], cli->folder, cli->json,
	    stdout) < 0)
		rc = EXIT_RUN_FAILED;
	store_close(store);
	return rc;
}

static int
cli_copy_fd(int fd)
{
	char buf[65536];
	ssize_t n;

	while ((n = read(fd, buf, sizeof buf)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			return -EIO;
	}
	return fflush(stdout) == 0 ? 0 : -EIO;
}

static int
cmd_show(struct cli *cli, int argc, char **argv)
{
	uint8_t raw[32];
	char hex[65], path[4096];
	struct store *store;
	int fd, rc;

	if (argc != 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (hex_decode(argv[0], raw, sizeof raw) < 0) {
		fprintf(stderr, "mailstow: '%s' is not a SHA-256 (64 hex "
		    "digits)\n", argv[0]);
		return EXIT_USAGE;
	}
	if ((rc = cli_open_store(cli, STORE_RDONLY, &store)) != 0)
		return rc;
	hex_encode(raw, sizeof raw, hex);
	rc = store_message_path(store, hex, path, sizeof path);
	store_close(store);
	if (rc < 0 || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "mailstow: no message %s in the archive\n",
		    argv[0]);
		return EXIT_RUN_FAILED;
	}
	rc = cli_copy_fd(fd);
	close(fd);
	return rc < 0 ? EXIT_RUN_FAILED : 0;
}

/* ---- main ------------------------------------------------------------- */


static const struct {
	const char *name;
	int (*fn)(struct cli *, int, char **);
} commands[] = {
	{ "check", cmd_check },
	{ "run", cmd_run },
	{ "status", cmd_status },
	{ "reload", cmd_reload },
	{ "runs", cmd_runs },
	{ "protocol", cmd_protocol },
	{ "messages", cmd_messages },
	{ "show", cmd_show },
	{ "oauth2", cmd_oauth2 },
};

static int
cli_options(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "profile", required_argument, NULL, 'p' },
		{ "last", required_argument, NULL, 'l' },
		{ "folder", required_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	/* '+' is not used: options may follow the command word. */
	while ((ch = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': cli->config = optarg; break;
		case 'j': cli->json = true; break;
		case 'p': case 'l': cli->profile = optarg; break;
		case 'f': cli->folder = optarg; break;
		case 'v': log_set_level(LOG_LVL_DEBUG); break;
		case 'h': usage(stdout); exit(0);
		default: return -1;
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct cli cli = { 0 };
	const char *cmd;
	size_t i;
	int rc;

	signal(SIGPIPE, SIG_IGN);
	log_set_level(LOG_LVL_WARN);
	if (cli_options(&cli, argc, argv) < 0 || optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = argv[optind];
	if (cli.config == NULL)
		cli.config = getenv("MAILSTOW_CONFIG");
	if (cli.config == NULL)
		cli.config = "/etc/mailstow/mailstow.yaml";
	for (i = 0; i < NELEM(commands); i++)
		if (strcmp(cmd, commands[i].name) == 0)
			break;
	if (i == NELEM(commands)) {
		fprintf(stderr, "mailstow: unknown command '%s'\n", cmd);
		usage(stderr);
		return EXIT_USAGE;
	}
	if ((rc = cli_load_conf(&cli)) != 0)
		return rc;
	rc = commands[i].fn(&cli, argc - optind - 1, argv + optind + 1);
	conf_free(cli.conf);
	return rc;
}
