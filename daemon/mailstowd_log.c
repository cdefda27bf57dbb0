/*
 * mailstowd_log.c - where the daemon's log lines go: native journald
 * entries with MAILSTOW_* fields when stderr is the journal (JOURNAL_STREAM)
 * or MAILSTOW_JOURNAL_SOCKET names a datagram socket, plain
 * "mailstowd: ..." lines on stderr otherwise.  Also the sink for the
 * library's own (debug) lines.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "base/util.h"
#include "mailstowd.h"

enum md_log_target { MD_LOG_STDERR, MD_LOG_JOURNAL, MD_LOG_SOCKET };

/* The daemon is one process with one log destination, set before the loop. */
static enum md_log_target md_log_target;
static int md_log_fd = -1;
static struct sockaddr_un md_log_addr;

/* Is stderr connected to journald?  JOURNAL_STREAM is "DEV:INODE". */
static bool
md_log_stderr_is_journal(void)
{
	unsigned long long dev, ino;
	const char *js = getenv("JOURNAL_STREAM");
	struct stat st;

	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return st.st_dev == dev && st.st_ino == ino;
}

static int
md_log_open_socket(const char *path)
{
	if (strlen(path) >= sizeof md_log_addr.sun_path)
		return -ENAMETOOLONG;
	md_log_addr.sun_family = AF_UNIX;
	strcpy(md_log_addr.sun_path, path);
	md_log_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	return md_log_fd < 0 ? -errno : 0;
}

static int
md_log_priority(enum log_level l)
{
	switch (l) {
	case LOG_LVL_ERR: return 3;
	case LOG_LVL_WARN: return 4;
	case LOG_LVL_INFO: return 6;
	default: return 7;
	}
}

static void
md_log_stderr(const char *msg)
{
	fprintf(stderr, "mailstowd: %s\n", msg);
	fflush(stderr);
}

static void
md_log_native(enum log_level level, const struct md_logctx *ctx,
    const char *msg)
{
	char prio[4], run[24], buf[8192];
	const struct ctl_journal_field f[] = {
		{ "MESSAGE", msg },
		{ "PRIORITY", prio },
		{ "SYSLOG_IDENTIFIER", "mailstowd" },
		{ "MAILSTOW_PROFILE", ctx != NULL ? ctx->profile : NULL },
		{ "MAILSTOW_RUN", ctx != NULL && ctx->run > 0 ? run : NULL },
		{ "MAILSTOW_MAILBOX", ctx != NULL ? ctx->mailbox : NULL },
		{ "MAILSTOW_FOLDER", ctx != NULL ? ctx->folder : NULL },
	};
	struct iovec iov[NELEM(f)];
	char lines[NELEM(f)][2048];
	size_t i, n = 0;
	int len;

	snprintf(prio, sizeof prio, "%d", md_log_priority(level));
	snprintf(run, sizeof run, "%lld", ctx != NULL ? (long long)ctx->run : 0);
	if (md_log_target == MD_LOG_SOCKET) {
		len = ctl_journal_encode(f, NELEM(f), buf, sizeof buf);
		/* Never block the loop on a slow reader of the socket. */
		if (len < 0 || sendto(md_log_fd, buf, (size_t)len,
		    MSG_NOSIGNAL | MSG_DONTWAIT,
		    (struct sockaddr *)&md_log_addr, sizeof md_log_addr) < 0)
			md_log_stderr(msg);
		return;
	}
	for (i = 0; i < NELEM(f); i++) {
		if (f[i].value == NULL)
			continue;
		snprintf(lines[n], sizeof lines[n], "%s=%s", f[i].name,
		    f[i].value);
		iov[n].iov_base = lines[n];
		iov[n].iov_len = strlen(lines[n]);
		n++;
	}
	if (sd_journal_sendv(iov, (int)n) < 0)
		md_log_stderr(msg);
}

void
md_log(enum log_level level, const struct md_logctx *ctx, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	if (level > log_get_level())
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (md_log_target == MD_LOG_STDERR)
		md_log_stderr(msg);
	else
		md_log_native(level, ctx, msg);
}

static void
md_log_sink(enum log_level level, const char *line, void *arg)
{
	md_log(level, NULL, "%s", line);
}

void
md_log_init(void)
{
	const char *sock = getenv("MAILSTOW_JOURNAL_SOCKET");

	if (sock != NULL && *sock != '\0' && md_log_open_socket(sock) == 0)
		md_log_target = MD_LOG_SOCKET;
	else if (md_log_stderr_is_journal())
		md_log_target = MD_LOG_JOURNAL;
	else
		md_log_target = MD_LOG_STDERR;
	log_set_sink(md_log_sink, NULL);
}
