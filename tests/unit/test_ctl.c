/*
 * test_ctl.c - the control protocol without a daemon: request parsing and
 * its limits, error codes, the run queue's limits and fairness, retry
 * backoff, the journald native encoding, and the blocking client against
 * a scripted server on a socketpair-backed UNIX socket.
 */
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctl/ctl.h"

static void
test_parse_ok(void **state)
{
	struct ctl_request r;
	char err[256];

	assert_int_equal(ctl_request_parse("run alice", 9, &r, err, sizeof err), 0);
	assert_int_equal(r.cmd, CTL_CMD_RUN);
	assert_string_equal(r.profile, "alice");
	assert_int_equal(ctl_request_parse("run bob\r", 8, &r, err, sizeof err), 0);
	assert_string_equal(r.profile, "bob");
	assert_int_equal(ctl_request_parse("status", 6, &r, err, sizeof err), 0);
	assert_int_equal(r.cmd, CTL_CMD_STATUS);
	assert_int_equal(ctl_request_parse("status json", 11, &r, err,
	    sizeof err), 0);
	assert_int_equal(r.cmd, CTL_CMD_STATUS_JSON);
	assert_int_equal(ctl_request_parse("reload", 6, &r, err, sizeof err), 0);
	assert_int_equal(r.cmd, CTL_CMD_RELOAD);
}

static void
test_parse_bad(void **state)
{
	static const char *bad[] = {
		"", "run", "run ", "run a b", "RUN alice", "status xml",
		"reload now", "stop", " status", "status ", "run al\tice",
	};
	struct ctl_request r = { .cmd = CTL_CMD_RELOAD };
	char err[256], longname[400], longline[CTL_LINE_MAX + 10];
	size_t i;

	for (i = 0; i < sizeof bad / sizeof *bad; i++) {
		err[0] = '\0';
		assert_int_equal(ctl_request_parse(bad[i], strlen(bad[i]), &r,
		    err, sizeof err), -EINVAL);
		assert_true(strlen(err) > 0);
	}
	/* Nothing written on failure. */
	assert_int_equal(r.cmd, CTL_CMD_RELOAD);
	assert_int_equal(ctl_request_parse("run a\0b", 7, &r, err, sizeof err),
	    -EINVAL);
	memset(longname, 'x', sizeof longname);
	memcpy(longname, "run ", 4);
	assert_int_equal(ctl_request_parse(longname, sizeof longname, &r, err,
	    sizeof err), -EINVAL);
	memset(longline, 'a', sizeof longline);
	assert_int_equal(ctl_request_parse(longline, sizeof longline, &r, err,
	    sizeof err), -EINVAL);
	assert_non_null(strstr(err, "too long"));
}

static void
test_errcodes(void **state)
{
	static const int codes[] = { -EBUSY, -ENOENT, -EINVAL, -EACCES,
	    -EMFILE, -ESHUTDOWN, -EPROTO, -EIO };
	size_t i;

	for (i = 0; i < sizeof codes / sizeof *codes; i++) {
		const char *n = ctl_errcode_name(codes[i]);

		assert_int_equal(ctl_errcode_parse(n, strlen(n)), codes[i]);
	}
	assert_int_equal(ctl_errcode_parse("whatever", 8), -EPROTO);
	assert_string_equal(ctl_errcode_name(-ENOSPC), "io");
}

static void
test_queue_limits(void **state)
{
	struct ctl_queue *q;
	void *arg;
	int a = 1, b = 2, c = 3, d = 4;

	assert_int_equal(ctl_queue_new(2, 1, &q), 0);
	assert_int_equal(ctl_queue_push(q, "a", "h1", &a), 0);
	assert_int_equal(ctl_queue_push(q, "b", "h1", &b), 0);
	assert_int_equal(ctl_queue_push(q, "c", "h2", &c), 0);
	assert_int_equal(ctl_queue_push(q, "d", "h3", &d), 0);
	assert_int_equal(ctl_queue_push(q, "a", "h9", &d), -EEXIST);
	assert_int_equal(ctl_queue_n_queued(q), 4);
	/* a starts; b waits for host h1, c may pass it. */
	assert_int_equal(ctl_queue_pop(q, &arg), 0);
	assert_ptr_equal(arg, &a);
	assert_int_equal(ctl_queue_pop(q, &arg), 0);
	assert_ptr_equal(arg, &c);
	/* Global limit 2 reached. */
	assert_int_equal(ctl_queue_pop(q, &arg), -EAGAIN);
	assert_int_equal(ctl_queue_state(q, "a"), CTL_Q_RUNNING);
	assert_int_equal(ctl_queue_state(q, "b"), CTL_Q_QUEUED);
	assert_int_equal(ctl_queue_state(q, "zz"), CTL_Q_NONE);
	assert_int_equal(ctl_queue_push(q, "a", "h1", &a), -EEXIST);
	assert_ptr_equal(ctl_queue_queued_at(q, 0), &b);
	assert_ptr_equal(ctl_queue_queued_at(q, 1), &d);
	assert_null(ctl_queue_queued_at(q, 2));
	/* A running profile is not removed as queued. */
	assert_null(ctl_queue_remove(q, "a"));
	assert_int_equal(ctl_queue_finished(q, "b"), -ENOENT);
	assert_int_equal(ctl_queue_finished(q, "a"), 0);
	assert_int_equal(ctl_queue_state(q, "a"), CTL_Q_NONE);
	/* h1 is free again: b, first in line, goes. */
	assert_int_equal(ctl_queue_pop(q, &arg), 0);
	assert_ptr_equal(arg, &b);
	assert_ptr_equal(ctl_queue_remove(q, "d"), &d);
	assert_int_equal(ctl_queue_n_queued(q), 0);
	assert_int_equal(ctl_queue_n_running(q), 2);
	ctl_queue_set_limits(q, 0, 0);	/* 0 means 1, never "stop forever" */
	assert_int_equal(ctl_queue_finished(q, "b"), 0);
	assert_int_equal(ctl_queue_push(q, "e", "h5", &a), 0);
	assert_int_equal(ctl_queue_pop(q, &arg), -EAGAIN);
	assert_int_equal(ctl_queue_finished(q, "c"), 0);
	assert_int_equal(ctl_queue_pop(q, &arg), 0);
	ctl_queue_free(q);
}

static void
test_retry_delay(void **state)
{
	assert_int_equal(ctl_retry_delay_ms(60000, 1, 3600000), 60000);
	assert_int_equal(ctl_retry_delay_ms(60000, 2, 3600000), 120000);
	assert_int_equal(ctl_retry_delay_ms(60000, 3, 3600000), 240000);
	assert_int_equal(ctl_retry_delay_ms(60000, 7, 3600000), 3600000);
	assert_int_equal(ctl_retry_delay_ms(60000, 1000, 3600000), 3600000);
	assert_int_equal(ctl_retry_delay_ms(UINT64_MAX / 3, 200, UINT64_MAX),
	    UINT64_MAX);
}

static void
test_journal_encode(void **state)
{
	const struct ctl_journal_field f[] = {
		{ "MESSAGE", "profile a run 3: succeeded" },
		{ "MAILSTOW_FOLDER", NULL },
		{ "MAILSTOW_RUN", "3" },
		{ "ERR", "two\nlines" },
	};
	const char want[] = "MESSAGE=profile a run 3: succeeded\n"
	    "MAILSTOW_RUN=3\n" "ERR\n\x09\0\0\0\0\0\0\0two\nlines\n";
	const struct ctl_journal_field badname[] = { { "lower", "x" } };
	char buf[256];
	int n;

	n = ctl_journal_encode(f, 4, buf, sizeof buf);
	assert_int_equal(n, sizeof want - 1);
	assert_memory_equal(buf, want, sizeof want - 1);
	assert_int_equal(ctl_journal_encode(f, 4, buf, 20), -ENOBUFS);
	assert_int_equal(ctl_journal_encode(badname, 1, buf, sizeof buf),
	    -EINVAL);
}

/* ---- the client against a scripted server ------------------------------ */

struct script {
	char	 path[108];
	int	 lfd;
	pid_t	 pid;
};

/* Fork a server that reads one line, checks it, and sends `reply`. */
static void
script_start(struct script *s, const char *expect, const char *reply)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char line[CTL_LINE_MAX];
	ssize_t n;
	size_t len = 0;
	int c;

	snprintf(s->path, sizeof s->path, "/tmp/test_ctl.%d.sock", getpid());
	unlink(s->path);
	strcpy(sun.sun_path, s->path);
	s->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(s->lfd >= 0);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&sun, sizeof sun), 0);
	assert_int_equal(listen(s->lfd, 1), 0);
	if ((s->pid = fork()) != 0) {
		assert_true(s->pid > 0);
		return;
	}
	alarm(10);
	if ((c = accept(s->lfd, NULL, NULL)) < 0)
		_exit(2);
	while (len < sizeof line && (n = read(c, line + len, 1)) == 1)
		if (line[len++] == '\n')
			break;
	if (len != strlen(expect) || memcmp(line, expect, len) != 0)
		_exit(3);
	if (write(c, reply, strlen(reply)) != (ssize_t)strlen(reply))
		_exit(4);
	close(c);
	_exit(0);
}

static void
script_end(struct script *s)
{
	int st;

	assert_int_equal(waitpid(s->pid, &st, 0), s->pid);
	close(s->lfd);
	unlink(s->path);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void
test_client_run_ok(void **state)
{
	struct script s;
	char status[32], err[256], *prog = NULL;
	size_t plen = 0;
	int64_t id = 0;
	FILE *pf;

	script_start(&s, "run alice\n", "queued waiting\nstarted 42\n"
	    "progress run 42 started\ndone 42 succeeded\n");
	assert_non_null(pf = open_memstream(&prog, &plen));
	assert_int_equal(ctl_run(s.path, "alice", pf, &id, status,
	    sizeof status, err, sizeof err), 0);
	fclose(pf);
	assert_int_equal(id, 42);
	assert_string_equal(status, "succeeded");
	assert_string_equal(prog, "waiting\nrun 42 started\n");
	free(prog);
	script_end(&s);
}

static void
test_client_run_busy(void **state)
{
	struct script s;
	char status[32] = "untouched", err[256];
	int64_t id = 7;

	script_start(&s, "run alice\n", "error busy profile alice is already "
	    "running since 2026-01-01T00:00:00Z (run 9)\n");
	assert_int_equal(ctl_run(s.path, "alice", NULL, &id, status,
	    sizeof status, err, sizeof err), -EBUSY);
	assert_string_equal(err, "profile alice is already running since "
	    "2026-01-01T00:00:00Z (run 9)");
	assert_int_equal(id, 7);
	assert_string_equal(status, "untouched");
	script_end(&s);
}

static void
test_client_run_cut(void **state)
{
	struct script s;
	char status[32], err[256];
	int64_t id;

	/* The daemon goes away before "done". */
	script_start(&s, "run bob\n", "started 3\n");
	assert_int_equal(ctl_run(s.path, "bob", NULL, &id, status,
	    sizeof status, err, sizeof err), -ECONNRESET);
	assert_non_null(strstr(err, "closed"));
	script_end(&s);
}

static void
test_client_status_reload(void **state)
{
	struct script s;
	char err[256], *out = NULL;
	size_t olen = 0;
	FILE *f;

	script_start(&s, "status json\n", "data {\"a\":\ndata 1}\nok\n");
	assert_non_null(f = open_memstream(&out, &olen));
	assert_int_equal(ctl_status(s.path, true, f, err, sizeof err), 0);
	fclose(f);
	assert_string_equal(out, "{\"a\":\n1}\n");
	free(out);
	script_end(&s);

	script_start(&s, "reload\n", "error inval /etc/x.yaml:3:7: bad\n");
	assert_int_equal(ctl_reload(s.path, err, sizeof err), -EINVAL);
	assert_string_equal(err, "/etc/x.yaml:3:7: bad");
	script_end(&s);

	script_start(&s, "reload\n", "ok\n");
	assert_int_equal(ctl_reload(s.path, err, sizeof err), 0);
	script_end(&s);
}

static void
test_client_no_daemon(void **state)
{
	char err[256];

	assert_int_equal(ctl_probe("/nonexistent/mailstow/ctl"), -ENOENT);
	assert_int_equal(ctl_reload("/nonexistent/mailstow/ctl", err,
	    sizeof err), -ENOENT);
	assert_non_null(strstr(err, "cannot connect"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_errcodes),
		cmocka_unit_test(test_queue_limits),
		cmocka_unit_test(test_retry_delay),
		cmocka_unit_test(test_journal_encode),
		cmocka_unit_test(test_client_run_ok),
		cmocka_unit_test(test_client_run_busy),
		cmocka_unit_test(test_client_run_cut),
		cmocka_unit_test(test_client_status_reload),
		cmocka_unit_test(test_client_no_daemon),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
