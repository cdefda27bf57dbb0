/*
 * fault.c - an LD_PRELOAD shim for the system tests that makes fsync,
 * fdatasync, write, rename and renameat fail with a chosen errno (or kill
 * the process just before the call, or only slow the call down), but only
 * for files under chosen directories (the archive's messages/ and tmp/,
 * oauth2/), so SQLite, sockets and stdout keep working.  Built by the
 * test itself:
 *   cc -shared -fPIC -o fault.so tests/fault/fault.c -ldl
 *
 * Environment:
 *   FAULT_OPS    comma list of: fsync fdatasync write rename renameat
 *   FAULT_ERRNO  EIO (default), ENOSPC, EDQUOT, EROFS, or a number
 *   FAULT_ACTION fail (default): the call fails with FAULT_ERRNO;
 *                kill: the process gets SIGKILL instead of making the
 *                call (a crash at exactly that step; logged "kill OP
 *                /path" first);
 *                delay: the call sleeps FAULT_DELAY_MS, then is made and
 *                returns what the real call returned, errno included (a
 *                slow disk; only the first delayed call is logged,
 *                "delay OP /path", as there are thousands)
 *   FAULT_DELAY_MS with delay: milliseconds per call, 20 by default, at
 *                most 1000
 *   FAULT_PATHS  colon list of path prefixes (absolute, resolved); a call
 *                matches when its file (or either rename path) is under one
 *   FAULT_NTH    act on the Nth matching call only (1-based); 0 or
 *                unset: every matching call from FAULT_FROM on
 *   FAULT_FROM   with FAULT_NTH unset: act on matching calls from the Nth
 *                on (default 1)
 *   FAULT_LOG    file that gets one line per injected failure
 *                ("fail fsync /path"), so the test can see the shim worked
 *   FAULT_TRACE  set: also log every fsync, fdatasync, rename and renameat
 *                under FAULT_PATHS, in call order ("fsync /path",
 *                "renameat /old -> /new"), failing or not: the test checks
 *                the order of durable steps from it
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long fault_count;	/* matching calls so far, all ops together */

static int
fault_op_enabled(const char *op)
{
	const char *ops = getenv("FAULT_OPS"), *p;
	size_t n = strlen(op);

	if (ops == NULL)
		return 0;
	for (p = ops; (p = strstr(p, op)) != NULL; p += n)
		if ((p == ops || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
			return 1;
	return 0;
}

static int
fault_errno(void)
{
	const char *e = getenv("FAULT_ERRNO");

	if (e == NULL || strcmp(e, "EIO") == 0)
		return EIO;
	if (strcmp(e, "ENOSPC") == 0)
		return ENOSPC;
	if (strcmp(e, "EDQUOT") == 0)
		return EDQUOT;
	if (strcmp(e, "EROFS") == 0)
		return EROFS;
	return atoi(e) > 0 ? atoi(e) : EIO;
}

static int
fault_path_matches(const char *path)
{
	const char *list = getenv("FAULT_PATHS"), *p, *end;
	size_t n;

	if (list == NULL || path == NULL)
		return 0;
	for (p = list; *p != '\0'; p = *end ? end + 1 : end) {
		end = strchr(p, ':');
		if (end == NULL)
			end = p + strlen(p);
		n = (size_t)(end - p);
		if (n > 0 && strncmp(path, p, n) == 0 &&
		    (path[n] == '/' || path[n] == '\0'))
			return 1;
	}
	return 0;
}

static void
fault_fd_path(int fd, char *buf, size_t len)
{
	char link[64];
	ssize_t n;

	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	n = readlink(link, buf, len - 1);
	buf[n < 0 ? 0 : n] = '\0';
}

/* dirfd + relative name -> absolute path (best effort). */
static void
fault_at_path(int dirfd, const char *name, char *buf, size_t len)
{
	char dir[PATH_MAX];

	if (name[0] == '/') {
		snprintf(buf, len, "%s", name);
		return;
	}
	if (dirfd == AT_FDCWD) {
		if (getcwd(dir, sizeof dir) == NULL)
			dir[0] = '\0';
	} else
		fault_fd_path(dirfd, dir, sizeof dir);
	snprintf(buf, len, "%s/%s", dir, name);
}

static void
fault_log(const char *op, const char *path, const char *path2)
{
	static ssize_t (*real_write)(int, const void *, size_t);
	const char *log = getenv("FAULT_LOG");
	char line[PATH_MAX + 32];
	int fd, n;

	if (log == NULL)
		return;
	if (real_write == NULL)
		real_write = (ssize_t (*)(int, const void *, size_t))
		    dlsym(RTLD_NEXT, "write");
	if (path2 != NULL)
		n = snprintf(line, sizeof line, "%s %s -> %s\n", op, path,
		    path2);
	else
		n = snprintf(line, sizeof line, "%s %s\n", op, path);
	if (n < 0 || (size_t)n >= sizeof line)
		return;
	fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0) {
		real_write(fd, line, (size_t)n);
		close(fd);
	}
}

static int
fault_killing(void)
{
	const char *a = getenv("FAULT_ACTION");

	return a != NULL && strcmp(a, "kill") == 0;
}

static int
fault_delaying(void)
{
	const char *a = getenv("FAULT_ACTION");

	return a != NULL && strcmp(a, "delay") == 0;
}

/*
 * A slow disk, not a broken one: sleep, and let the caller make the real
 * call.  errno is kept, since nothing failed.  Only the first delayed call
 * is logged, so the test can see the shim matched without a line per
 * write.
 */
static void
fault_delay(const char *op, const char *path)
{
	static int logged;
	const char *v = getenv("FAULT_DELAY_MS");
	struct timespec ts, left;
	long ms = 20;
	char what[64], *end;
	int saved = errno;

	if (v != NULL && *v != '\0') {
		errno = 0;
		ms = strtol(v, &end, 10);
		if (errno != 0 || *end != '\0' || ms < 0)
			ms = 20;
	}
	if (ms > 1000)
		ms = 1000;
	if (__atomic_exchange_n(&logged, 1, __ATOMIC_SEQ_CST) == 0) {
		snprintf(what, sizeof what, "delay %s", op);
		fault_log(what, path, NULL);
	}
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &left) < 0 && errno == EINTR)
		ts = left;
	errno = saved;
}

/* Decide for one matching call; 1: fail it (errno set). */
static int
fault_fire(const char *op, const char *path)
{
	const char *nth = getenv("FAULT_NTH"), *from = getenv("FAULT_FROM");
	long k = __atomic_add_fetch(&fault_count, 1, __ATOMIC_SEQ_CST);
	long want;

	if (nth != NULL && (want = atol(nth)) > 0) {
		if (k != want)
			return 0;
	} else if (from != NULL && k < atol(from))
		return 0;
	if (fault_delaying()) {
		fault_delay(op, path);
		return 0;
	}
	{
		char what[64];

		snprintf(what, sizeof what, "%s %s",
		    fault_killing() ? "kill" : "fail", op);
		fault_log(what, path, NULL);
	}
	if (fault_killing())
		kill(getpid(), SIGKILL);	/* the whole process, not a thread */
	errno = fault_errno();
	return 1;
}

static int
fault_tracing(void)
{
	return getenv("FAULT_TRACE") != NULL;
}

static int
fault_fd_check(const char *op, int fd)
{
	char path[PATH_MAX];
	int trace = fault_tracing() && strcmp(op, "write") != 0;

	if (!trace && !fault_op_enabled(op))
		return 0;
	fault_fd_path(fd, path, sizeof path);
	if (!fault_path_matches(path))
		return 0;
	if (trace)
		fault_log(op, path, NULL);
	if (!fault_op_enabled(op))
		return 0;
	return fault_fire(op, path);
}

int
fsync(int fd)
{
	static int (*real)(int);

	if (real == NULL)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	if (fault_fd_check("fsync", fd))
		return -1;
	return real(fd);
}

int
fdatasync(int fd)
{
	static int (*real)(int);

	if (real == NULL)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	if (fault_fd_check("fdatasync", fd))
		return -1;
	return real(fd);
}

ssize_t
write(int fd, const void *buf, size_t len)
{
	static ssize_t (*real)(int, const void *, size_t);

	if (real == NULL)
		real = (ssize_t (*)(int, const void *, size_t))
		    dlsym(RTLD_NEXT, "write");
	/* Sockets and pipes (and fd 0-2) never match a file path. */
	if (fd > 2 && fault_fd_check("write", fd))
		return -1;
	return real(fd, buf, len);
}

static int
fault_rename_check(const char *op, int ofd, const char *old, int nfd,
    const char *new)
{
	char a[PATH_MAX], b[PATH_MAX];

	if (!fault_tracing() && !fault_op_enabled(op))
		return 0;
	fault_at_path(ofd, old, a, sizeof a);
	fault_at_path(nfd, new, b, sizeof b);
	if (!fault_path_matches(a) && !fault_path_matches(b))
		return 0;
	if (fault_tracing())
		fault_log(op, a, b);
	if (!fault_op_enabled(op))
		return 0;
	return fault_fire(op, b);
}

int
rename(const char *old, const char *new)
{
	static int (*real)(const char *, const char *);

	if (real == NULL)
		real = (int (*)(const char *, const char *))
		    dlsym(RTLD_NEXT, "rename");
	if (fault_rename_check("rename", AT_FDCWD, old, AT_FDCWD, new))
		return -1;
	return real(old, new);
}

int
renameat(int ofd, const char *old, int nfd, const char *new)
{
	static int (*real)(int, const char *, int, const char *);

	if (real == NULL)
		real = (int (*)(int, const char *, int, const char *))
		    dlsym(RTLD_NEXT, "renameat");
	if (fault_rename_check("renameat", ofd, old, nfd, new))
		return -1;
	return real(ofd, old, nfd, new);
}
