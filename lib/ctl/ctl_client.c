/*
 * ctl_client.c - the blocking control client the CLI uses: connect to the
 * daemon's UNIX socket, send one request line, read reply lines (each
 * bounded by CTL_REPLY_MAX) until the final one.  Short requests time out;
 * a run waits as long as the daemon takes.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "ctl/ctl.h"

#define CTL_CLIENT_TIMEOUT_S	60	/* status and reload */

struct ctl_conn {
	int	 fd;
	char	*buf;			/* CTL_REPLY_MAX + 1 */
	size_t	 len;			/* bytes held */
	size_t	 off;			/* start of the next line */
};

static int
ctl_connect(const char *path, int timeout_s, struct ctl_conn *c)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { timeout_s, 0 };
	int fd, e;

	memset(c, 0, sizeof *c);
	c->fd = -1;
	if (strlen(path) >= sizeof sun.sun_path)
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	if (timeout_s > 0 &&
	    (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)) {
		e = -errno;
		close(fd);
		return e;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
		e = -errno;
		close(fd);
		return e;
	}
	if ((c->buf = malloc(CTL_REPLY_MAX + 1)) == NULL) {
		close(fd);
		return -ENOMEM;
	}
	c->fd = fd;
	return 0;
}

static void
ctl_close(struct ctl_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	c->fd = -1;
	c->buf = NULL;
}

int
ctl_probe(const char *path)
{
	struct ctl_conn c;
	int r;

	if ((r = ctl_connect(path, 5, &c)) < 0)
		return r;
	ctl_close(&c);
	return 0;
}

static int
ctl_send(struct ctl_conn *c, const char *line)
{
	size_t off = 0, len = strlen(line);
	ssize_t n;

	while (off < len) {
		n = send(c->fd, line + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		off += (size_t)n;
	}
	return 0;
}

/*
 * The next reply line, NUL-terminated without its LF, borrowed until the
 * next call.  -ECONNRESET at EOF, -EMSGSIZE for an overlong line.
 */
static int
ctl_readline(struct ctl_conn *c, char **ret)
{
	char *nl;
	ssize_t n;

	for (;;) {
		nl = memchr(c->buf + c->off, '\n', c->len - c->off);
		if (nl != NULL) {
			*nl = '\0';
			*ret = c->buf + c->off;
			c->off = (size_t)(nl - c->buf) + 1;
			return 0;
		}
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
		if (c->len == CTL_REPLY_MAX)
			return -EMSGSIZE;
		n = read(c->fd, c->buf + c->len, CTL_REPLY_MAX - c->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		if (n == 0)
			return -ECONNRESET;
		c->len += (size_t)n;
	}
}

/* "WORD rest": is the line's first word `word`?  *ret_rest after it. */
static bool
ctl_is(const char *line, const char *word, const char **ret_rest)
{
	size_t n = strlen(word);

	if (strncmp(line, word, n) != 0 || (line[n] != ' ' && line[n] != '\0'))
		return false;
	*ret_rest = line[n] == ' ' ? line + n + 1 : line + n;
	return true;
}

/* An "error CODE TEXT" line: -errno and the text in err. */
static int
ctl_error_line(const char *rest, char *err, size_t errlen)
{
	const char *sp = strchr(rest, ' ');
	size_t clen = sp != NULL ? (size_t)(sp - rest) : strlen(rest);

	str_escape(err, errlen, sp != NULL ? sp + 1 : "",
	    sp != NULL ? strlen(sp + 1) : 0);
	return ctl_errcode_parse(rest, clen);
}

static int
ctl_fail(int r, const char *path, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "control socket %s: %s: %s", path, what,
	    r == -ECONNRESET ? "the daemon closed the connection" :
	    r == -EMSGSIZE ? "reply line too long" :
	    r == -ETIMEDOUT ? "no reply in time" : strerror(-r));
	return r;
}

/*
 * Connect and send one request line.  A send that fails is not final: a
 * daemon that refuses a peer says why and closes, and that line is still
 * there to read.
 */
static int
ctl_request(struct ctl_conn *c, const char *path, int timeout_s,
    const char *line, char *err, size_t errlen)
{
	int r;

	if ((r = ctl_connect(path, timeout_s, c)) < 0)
		return ctl_fail(r, path, "cannot connect", err, errlen);
	if ((r = ctl_send(c, line)) < 0)
		shutdown(c->fd, SHUT_WR);
	return 0;
}

static int
ctl_run_done(const char *rest, int64_t *ret_run_id, char *status,
    size_t statuslen, char *err, size_t errlen)
{
	const char *sp = strchr(rest, ' ');
	uint64_t id;

	if (sp == NULL || parse_u64(rest, (size_t)(sp - rest), &id) < 0 ||
	    id > INT64_MAX || strlen(sp + 1) >= statuslen) {
		snprintf(err, errlen, "bad reply from the daemon");
		return -EPROTO;
	}
	strcpy(status, sp + 1);
	*ret_run_id = (int64_t)id;
	return 0;
}

int
ctl_run(const char *path, const char *profile, FILE *progress,
    int64_t *ret_run_id, char *status, size_t statuslen, char *err,
    size_t errlen)
{
	char req[CTL_LINE_MAX + 8];
	struct ctl_conn c;
	const char *rest;
	char *line;
	int r;

	if (strlen(profile) >= CTL_PROFILE_MAX) {
		snprintf(err, errlen, "profile name too long");
		return -EINVAL;
	}
	snprintf(req, sizeof req, "run %s\n", profile);
	if ((r = ctl_request(&c, path, 0, req, err, errlen)) < 0)
		return r;
	while ((r = ctl_readline(&c, &line)) == 0) {
		if (ctl_is(line, "done", &rest)) {
			r = ctl_run_done(rest, ret_run_id, status, statuslen,
			    err, errlen);
			break;
		}
		if (ctl_is(line, "error", &rest)) {
			r = ctl_error_line(rest, err, errlen);
			break;
		}
		if (progress != NULL && (ctl_is(line, "progress", &rest) ||
		    ctl_is(line, "queued", &rest))) {
			fprintf(progress, "%s\n", rest);
			fflush(progress);
		}
	}
	if (r < 0 && r != -EPROTO && r != -EBUSY && r != -ENOENT &&
	    r != -EINVAL && r != -EACCES && r != -EMFILE && r != -ESHUTDOWN &&
	    r != -EIO)
		ctl_fail(r, path, "while waiting for the run", err, errlen);
	ctl_close(&c);
	return r;
}

/* Read data lines to `out` until "ok" or an error. */
static int
ctl_simple(const char *path, const char *req, FILE *out, char *err,
    size_t errlen)
{
	struct ctl_conn c;
	const char *rest;
	char *line;
	int r;

	if ((r = ctl_request(&c, path, CTL_CLIENT_TIMEOUT_S, req, err,
	    errlen)) < 0)
		return r;
	while ((r = ctl_readline(&c, &line)) == 0) {
		if (ctl_is(line, "ok", &rest))
			break;
		if (ctl_is(line, "error", &rest)) {
			r = ctl_error_line(rest, err, errlen);
			ctl_close(&c);
			return r;
		}
		if (out != NULL && ctl_is(line, "data", &rest))
			fprintf(out, "%s\n", rest);
	}
	if (r < 0)
		ctl_fail(r, path, "while reading the reply", err, errlen);
	ctl_close(&c);
	return r;
}

int
ctl_status(const char *path, bool json, FILE *out, char *err, size_t errlen)
{
	return ctl_simple(path, json ? "status json\n" : "status\n", out, err,
	    errlen);
}

int
ctl_reload(const char *path, char *err, size_t errlen)
{
	return ctl_simple(path, "reload\n", NULL, err, errlen);
}
