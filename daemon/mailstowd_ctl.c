/*
 * mailstowd_ctl.c - the control socket server: a UNIX stream socket (mode
 * 0660) where each connection sends one bounded request line and gets reply
 * lines (see ctl/ctl.h).  Peers are checked with SO_PEERCRED, idle peers
 * are dropped, connections are limited, and nothing a peer sends can stall
 * the loop.
 */
#define _GNU_SOURCE		/* struct ucred */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "base/util.h"
#include "mailstowd.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS	59
#endif

struct md_client {
	struct md_ctl *ctl;
	struct bufferevent *bev;
	struct md_job *job;		/* waiting on it, or NULL */
	bool	 got_request, closing, lingering;
	LIST_ENTRY(md_client) entry;
};

struct md_ctl {
	struct md *md;
	struct evconnlistener *lis;
	char	*path;
	dev_t	 dev;
	ino_t	 ino;
	gid_t	 gid;			/* the socket's group */
	unsigned n_clients;
	LIST_HEAD(, md_client) clients;
};

static void
md_client_free(struct md_client *cl)
{
	if (cl->job != NULL)
		md_waiter_detach(cl->job, cl);
	LIST_REMOVE(cl, entry);
	cl->ctl->n_clients--;
	bufferevent_free(cl->bev);
	free(cl);
}

void
md_client_send(struct md_client *cl, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(cl->bev);
	va_list ap;

	if (cl->closing)
		return;
	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\n", 1);
}

void
md_client_end(struct md_client *cl, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(cl->bev);
	va_list ap;

	if (cl->closing)
		return;
	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\n", 1);
	cl->closing = true;
	if (cl->job != NULL)
		md_waiter_detach(cl->job, cl);
	cl->job = NULL;
	/* The write callback frees the client once this is on the wire. */
	bufferevent_disable(cl->bev, EV_READ);
	bufferevent_enable(cl->bev, EV_WRITE);
}

static void
md_ctl_status(struct md_client *cl, bool json)
{
	char *text = NULL, *line, *next;
	size_t len = 0;
	FILE *f;

	if ((f = open_memstream(&text, &len)) == NULL) {
		md_client_end(cl, "error io out of memory");
		return;
	}
	md_status_print(cl->ctl->md, json, f);
	if (fclose(f) != 0 || text == NULL) {
		free(text);
		md_client_end(cl, "error io out of memory");
		return;
	}
	for (line = text; *line != '\0'; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		else
			next = line + strlen(line);
		md_client_send(cl, "data %s", line);
	}
	free(text);
	md_client_end(cl, "ok");
}

static void
md_ctl_run(struct md_client *cl, const char *name)
{
	struct md *md = cl->ctl->md;
	struct md_prof *p;
	char err[512];
	int r;

	if ((r = md_request_run(md, name, cl, err, sizeof err)) < 0) {
		md_client_end(cl, "error %s %s", ctl_errcode_name(r), err);
		return;
	}
	/* The run may already be over (it could not start): then it ended us. */
	if (cl->closing || (p = md_prof_find(md, name)) == NULL)
		return;
	cl->job = p->job;
	if (p->job != NULL && !p->job->running)
		md_client_send(cl, "queued waiting for a free slot (%zu "
		    "running, limit %u)", ctl_queue_n_running(md->queue),
		    md->conf->conf->daemon.max_concurrent_runs);
}

static void
md_ctl_request(struct md_client *cl, const char *line, size_t len)
{
	struct ctl_request req;
	char err[1024];
	int r;

	if (ctl_request_parse(line, len, &req, err, sizeof err) < 0) {
		md_client_end(cl, "error inval %s", err);
		return;
	}
	switch (req.cmd) {
	case CTL_CMD_RUN:
		md_ctl_run(cl, req.profile);
		break;
	case CTL_CMD_STATUS:
	case CTL_CMD_STATUS_JSON:
		md_ctl_status(cl, req.cmd == CTL_CMD_STATUS_JSON);
		break;
	case CTL_CMD_RELOAD:
		if (cl->ctl->md->stopping)
			md_client_end(cl, "error shutdown the daemon is "
			    "shutting down");
		else if ((r = md_reload(cl->ctl->md, err, sizeof err)) < 0)
			md_client_end(cl, "error %s %s", ctl_errcode_name(
			    r == -EINVAL ? -EINVAL : r), err);
		else
			md_client_end(cl, "ok");
		break;
	}
}

static void
md_client_read(struct bufferevent *bev, void *arg)
{
	struct md_client *cl = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct timeval wt = { 60, 0 };
	size_t n;
	char *line;

	if (cl->got_request || cl->closing || cl->lingering) {
		/* One request per connection; later bytes are ignored. */
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);
	if (line == NULL) {
		if (evbuffer_get_length(in) >= CTL_LINE_MAX)
			md_client_end(cl, "error inval request line too long "
			    "(at most %d bytes)", CTL_LINE_MAX - 1);
		return;
	}
	cl->got_request = true;
	/* A run may take hours: no read timeout once the request is in. */
	bufferevent_set_timeouts(bev, NULL, &wt);
	if (n >= CTL_LINE_MAX)
		md_client_end(cl, "error inval request line too long (at most "
		    "%d bytes)", CTL_LINE_MAX - 1);
	else
		md_ctl_request(cl, line, n);
	free(line);
}

/*
 * The last line is on the wire.  Closing now could throw it away: a UNIX
 * socket closed with unread input resets the peer before it reads.  So
 * send EOF and read (and discard) until the peer closes, briefly.
 */
static void
md_client_write(struct bufferevent *bev, void *arg)
{
	struct md_client *cl = arg;
	struct timeval linger = { 2, 0 };

	if (!cl->closing || cl->lingering)
		return;
	cl->lingering = true;
	if (shutdown(bufferevent_getfd(bev), SHUT_WR) < 0) {
		md_client_free(cl);
		return;
	}
	bufferevent_set_timeouts(bev, &linger, &linger);
	bufferevent_enable(bev, EV_READ);
}

static void
md_client_event(struct bufferevent *bev, short what, void *arg)
{
	struct md_client *cl = arg;

	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) &&
	    !cl->got_request && !cl->closing && !cl->lingering) {
		md_client_end(cl, "error proto no request within %d seconds",
		    MD_CTL_IDLE_S);
		return;
	}
	/* EOF, error or a peer that does not read: the client goes. */
	md_client_free(cl);
}

/* uid 0, our own uid, or a member of the socket's group. */
static bool
md_ctl_peer_ok(struct md_ctl *ctl, int fd)
{
	struct ucred uc;
	gid_t groups[1024];
	socklen_t len = sizeof uc;
	size_t i;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
		return false;
	if (uc.uid == 0 || uc.uid == geteuid() || uc.gid == ctl->gid)
		return true;
	len = sizeof groups;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
		return false;
	for (i = 0; i < len / sizeof *groups; i++)
		if (groups[i] == ctl->gid)
			return true;
	return false;
}

static void
md_ctl_accept(struct evconnlistener *lis, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct md_ctl *ctl = arg;
	struct timeval idle = { MD_CTL_IDLE_S, 0 };
	struct md_client *cl;

	if ((cl = calloc(1, sizeof *cl)) == NULL ||
	    (cl->bev = bufferevent_socket_new(ctl->md->base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		free(cl);
		close(fd);
		return;
	}
	cl->ctl = ctl;
	LIST_INSERT_HEAD(&ctl->clients, cl, entry);
	ctl->n_clients++;
	bufferevent_setcb(cl->bev, md_client_read, md_client_write,
	    md_client_event, cl);
	bufferevent_set_timeouts(cl->bev, &idle, &idle);
	bufferevent_setwatermark(cl->bev, EV_READ, 0, CTL_LINE_MAX);
	bufferevent_enable(cl->bev, EV_READ);
	if (!md_ctl_peer_ok(ctl, fd))
		md_client_end(cl, "error perm not allowed: the control socket "
		    "is for root and members of its group");
	else if (ctl->n_clients > MD_CTL_MAX_CLIENTS)
		md_client_end(cl, "error limit too many control connections "
		    "(at most %d)", MD_CTL_MAX_CLIENTS);
}

/* Remove a stale socket left by a dead daemon; refuse a live one. */
static int
md_ctl_stale(const char *path, char *err, size_t errlen)
{
	struct stat st;
	int r;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "control socket %s: exists and is not a "
		    "socket", path);
		return -EEXIST;
	}
	if ((r = ctl_probe(path)) == 0) {
		snprintf(err, errlen, "control socket %s: another daemon is "
		    "listening there", path);
		return -EADDRINUSE;
	}
	if (r == -ECONNREFUSED && unlink(path) == 0)
		return 0;
	snprintf(err, errlen, "control socket %s: cannot replace it: %s",
	    path, strerror(r == -ECONNREFUSED ? errno : -r));
	return -EEXIST;
}

static int
md_ctl_bind(struct md_ctl *ctl, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old;
	int fd, r;

	if (strlen(path) >= sizeof sun.sun_path) {
		snprintf(err, errlen, "control socket %s: path too long", path);
		return -ENAMETOOLONG;
	}
	strcpy(sun.sun_path, path);
	if ((r = md_ctl_stale(path, err, errlen)) < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	old = umask(0117);		/* created 0660, never wider */
	r = bind(fd, (struct sockaddr *)&sun, sizeof sun);
	umask(old);
	if (r < 0 || chmod(path, 0660) < 0 || stat(path, &st) < 0 ||
	    listen(fd, 64) < 0) {
		r = -errno;
		snprintf(err, errlen, "control socket %s: %s (set "
		    "daemon.control_socket or --control-socket)", path,
		    strerror(-r));
		close(fd);
		return r;
	}
	ctl->dev = st.st_dev;
	ctl->ino = st.st_ino;
	ctl->gid = st.st_gid;
	return fd;
}

int
md_ctl_open(struct md *md, const char *path, struct md_ctl **ret, char *err,
    size_t errlen)
{
	struct md_ctl *ctl;
	int fd;

	if ((ctl = calloc(1, sizeof *ctl)) == NULL ||
	    (ctl->path = strdup(path)) == NULL) {
		free(ctl);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ctl->md = md;
	LIST_INIT(&ctl->clients);
	if ((fd = md_ctl_bind(ctl, path, err, errlen)) < 0) {
		free(ctl->path);
		free(ctl);
		return fd;
	}
	ctl->lis = evconnlistener_new(md->base, md_ctl_accept, ctl,
	    LEV_OPT_CLOSE_ON_FREE, 0, fd);
	if (ctl->lis == NULL) {
		close(fd);
		unlink(path);
		md_ctl_free(ctl);
		snprintf(err, errlen, "control socket %s: cannot listen", path);
		return -ENOMEM;
	}
	*ret = ctl;
	return 0;
}

/* Close the listening socket and remove its file, if it is still ours. */
void
md_ctl_stop_listening(struct md_ctl *ctl)
{
	struct stat st;

	if (ctl == NULL || ctl->lis == NULL)
		return;
	evconnlistener_free(ctl->lis);
	ctl->lis = NULL;
	if (lstat(ctl->path, &st) == 0 && st.st_dev == ctl->dev &&
	    st.st_ino == ctl->ino)
		unlink(ctl->path);
}

void
md_ctl_free(struct md_ctl *ctl)
{
	struct md_client *cl;

	if (ctl == NULL)
		return;
	md_ctl_stop_listening(ctl);
	while ((cl = LIST_FIRST(&ctl->clients)) != NULL)
		md_client_free(cl);
	free(ctl->path);
	free(ctl);
}
