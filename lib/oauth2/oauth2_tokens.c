/*
 * oauth2_tokens.c - a profile's token file: its path, reading it (refused
 * when others may read it, bounded, strictly typed) and writing it so
 * that a crash leaves the old file or the new one whole (0600 temporary
 * file, fsync, rename, fsync of the directory).  Buffers that held tokens
 * are zeroed before they are freed.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/secret_file.h"
#include "base/util.h"
#include "oauth2_private.h"

static const char *const oauth2_status_names[] = {
	"ok", "network", "tls", "login", "client", "pending", "slow_down",
	"denied", "expired", "protocol", "local",
};
_Static_assert(NELEM(oauth2_status_names) == OAUTH2_ERR_LOCAL + 1,
    "one name per status");

const char *
oauth2_status_name(enum oauth2_status s)
{
	if ((unsigned)s >= NELEM(oauth2_status_names))
		return "unknown";
	return oauth2_status_names[s];
}

void
oauth2_tokens_clear(struct oauth2_tokens *t)
{
	secret_free(t->access_token);
	secret_free(t->refresh_token);
	free(t->scope);
	memset(t, 0, sizeof *t);
}

int
oauth2_tokens_copy(const struct oauth2_tokens *t, struct oauth2_tokens *ret)
{
	struct oauth2_tokens c = *t;

	c.access_token = xstrdup_or_null(t->access_token);
	c.refresh_token = xstrdup_or_null(t->refresh_token);
	c.scope = xstrdup_or_null(t->scope);
	if ((t->access_token != NULL && c.access_token == NULL) ||
	    (t->refresh_token != NULL && c.refresh_token == NULL) ||
	    (t->scope != NULL && c.scope == NULL)) {
		oauth2_tokens_clear(&c);
		return -ENOMEM;
	}
	*ret = c;
	return 0;
}

int
oauth2_token_path(const char *archive_path, const char *profile, char *buf,
    size_t len)
{
	int n;

	/* The name becomes a file name: it must not leave the directory. */
	if (profile[0] == '\0' || profile[0] == '.' ||
	    strchr(profile, '/') != NULL)
		return -EINVAL;
	n = snprintf(buf, len, "%s/oauth2/%s.json", archive_path, profile);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* An optional non-negative integer member. */
static int
oauth2_tokens_time(json_t *root, const char *key, int64_t *ret)
{
	json_t *v = json_object_get(root, key);

	*ret = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -EINVAL;
	*ret = (int64_t)json_integer_value(v);
	return 0;
}

int
oauth2_tokens_parse(const char *data, size_t len, struct oauth2_tokens *ret)
{
	struct oauth2_tokens t = { 0 };
	json_t *root;
	int r;

	if ((r = oauth2_json_load(data, len, &root, NULL, 0)) < 0)
		return r;
	if ((r = oauth2_json_string(root, "access_token", OAUTH2_MAX_TOKEN,
	    false, false, &t.access_token, NULL, 0)) < 0 ||
	    (r = oauth2_json_string(root, "refresh_token", OAUTH2_MAX_TOKEN,
	    false, false, &t.refresh_token, NULL, 0)) < 0 ||
	    (r = oauth2_json_string(root, "scope", OAUTH2_MAX_SCOPE, true,
	    false, &t.scope, NULL, 0)) < 0 ||
	    (r = oauth2_tokens_time(root, "expires_at", &t.expires_at)) < 0 ||
	    (r = oauth2_tokens_time(root, "updated_at", &t.updated_at)) < 0)
		goto fail;
	r = -EINVAL;
	if (t.access_token == NULL && t.refresh_token == NULL)
		goto fail;
	oauth2_json_free(root);
	*ret = t;
	return 0;
fail:
	oauth2_json_free(root);
	oauth2_tokens_clear(&t);
	return r == -ENOMEM ? r : -EINVAL;
}

/* The file, checked and read whole into a heap buffer of `cap` bytes. */
static int
oauth2_tokens_read(int fd, char **ret_buf, size_t cap, size_t *ret_len)
{
	struct stat st;
	char *buf;
	int r;

	if ((r = secret_file_check(fd, cap - 1, &st)) < 0)
		return r;
	if ((buf = malloc(cap)) == NULL)
		return -ENOMEM;
	if ((r = secret_file_read(fd, buf, cap - 1, ret_len)) < 0) {
		explicit_bzero(buf, cap);
		free(buf);
		return r;
	}
	*ret_buf = buf;
	return 0;
}

/* A token file is never followed through a symlink, whoever owns it. */
int
oauth2_tokens_load(const char *path, struct oauth2_tokens *ret)
{
	size_t cap = OAUTH2_MAX_RESPONSE + 1, len = 0;
	char *buf = NULL;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK |
	    O_NOFOLLOW);
	if (fd < 0)
		return errno == ELOOP ? -EPERM : -errno;
	r = oauth2_tokens_read(fd, &buf, cap, &len);
	close(fd);
	if (r < 0)
		return r == -EFBIG ? -EINVAL : r;
	r = oauth2_tokens_parse(buf, len, ret);
	explicit_bzero(buf, cap);
	free(buf);
	return r;
}

/* ---- writing ----------------------------------------------------------- */

struct oauth2_out {
	char	*buf;
	size_t	 len, cap;
};

static void
oauth2_out_put(struct oauth2_out *o, const char *s, size_t n)
{
	/* cap is computed to fit; this is a guard, never a truncation. */
	if (n > o->cap - o->len)
		n = o->cap - o->len;
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

static void
oauth2_out_str(struct oauth2_out *o, const char *key, const char *v,
    bool *first)
{
	char esc[8];
	size_t i;

	if (v == NULL)
		return;
	oauth2_out_put(o, *first ? "{\n  \"" : ",\n  \"", 5);
	*first = false;
	oauth2_out_put(o, key, strlen(key));
	oauth2_out_put(o, "\": \"", 4);
	for (i = 0; v[i] != '\0'; i++) {
		unsigned char ch = (unsigned char)v[i];

		if (ch == '"' || ch == '\\') {
			esc[0] = '\\';
			esc[1] = (char)ch;
			oauth2_out_put(o, esc, 2);
		} else if (ch < 0x20) {
			snprintf(esc, sizeof esc, "\\u%04x", ch);
			oauth2_out_put(o, esc, 6);
		} else
			oauth2_out_put(o, (const char *)&ch, 1);
	}
	oauth2_out_put(o, "\"", 1);
}

static void
oauth2_out_int(struct oauth2_out *o, const char *key, int64_t v, bool *first)
{
	char num[32];
	int n;

	oauth2_out_put(o, *first ? "{\n  \"" : ",\n  \"", 5);
	*first = false;
	oauth2_out_put(o, key, strlen(key));
	n = snprintf(num, sizeof num, "\": %lld", (long long)v);
	oauth2_out_put(o, num, (size_t)n);
}

/* The file's bytes; keys in a fixed order, updated_at is now. */
static int
oauth2_tokens_format(const struct oauth2_tokens *t, struct oauth2_out *o)
{
	bool first = true;
	size_t need = 256;

	if (t->access_token != NULL)
		need += 6 * strlen(t->access_token);
	if (t->refresh_token != NULL)
		need += 6 * strlen(t->refresh_token);
	if (t->scope != NULL)
		need += 6 * strlen(t->scope);
	if ((o->buf = malloc(need)) == NULL)
		return -ENOMEM;
	o->cap = need;
	o->len = 0;
	oauth2_out_str(o, "access_token", t->access_token, &first);
	oauth2_out_int(o, "expires_at", t->expires_at, &first);
	oauth2_out_str(o, "refresh_token", t->refresh_token, &first);
	oauth2_out_str(o, "scope", t->scope, &first);
	oauth2_out_int(o, "updated_at", (int64_t)time(NULL), &first);
	oauth2_out_put(o, "\n}\n", 3);
	return 0;
}

static int
oauth2_write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * The directory, created 0700 when missing.  A root CLI creating it in
 * an archive that belongs to the daemon's user hands it to that user.
 */
static int
oauth2_dir_open(const char *dir)
{
	struct stat st;
	char parent[4096];
	char *slash;
	int fd;

	if (mkdir(dir, 0700) < 0) {
		if (errno != EEXIST)
			return -errno;
	} else if (geteuid() == 0) {
		snprintf(parent, sizeof parent, "%s", dir);
		if ((slash = strrchr(parent, '/')) != NULL) {
			*slash = '\0';
			if (stat(parent[0] != '\0' ? parent : "/", &st) == 0 &&
			    st.st_uid != 0 && chown(dir, st.st_uid,
			    st.st_gid) < 0)
				return -errno;
		}
	}
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -errno;
	return fd;
}

static int
oauth2_tmp_create(int dfd, const char *base, char *tmp, size_t len)
{
	struct timespec ts;
	int attempt, fd, n;

	for (attempt = 0; attempt < 16; attempt++) {
		clock_gettime(CLOCK_REALTIME, &ts);
		n = snprintf(tmp, len, ".%s.%ld.%ld.%d.tmp", base,
		    (long)getpid(), (long)ts.tv_nsec, attempt);
		if (n < 0 || (size_t)n >= len)
			return -ENAMETOOLONG;
		fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
		    O_NOFOLLOW, 0600);
		if (fd >= 0 || errno != EEXIST)
			return fd >= 0 ? fd : -errno;
	}
	return -EEXIST;
}

/*
 * Temporary files of this token file left by a save that died before its
 * rename hold tokens: remove those older than a minute (a save takes
 * milliseconds, so a younger one may be another process's in flight).
 */
static void
oauth2_tmp_sweep(int dfd, const char *base)
{
	size_t blen = strlen(base), nlen;
	struct dirent *de;
	struct stat st;
	DIR *d;
	int fd;

	if ((fd = dup(dfd)) < 0)
		return;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		nlen = strlen(de->d_name);
		if (de->d_name[0] != '.' || nlen < blen + 6 ||
		    strncmp(de->d_name + 1, base, blen) != 0 ||
		    de->d_name[blen + 1] != '.' ||
		    strcmp(de->d_name + nlen - 4, ".tmp") != 0)
			continue;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode) && st.st_mtime < time(NULL) - 60)
			unlinkat(dfd, de->d_name, 0);
	}
	closedir(d);
}

/* Write, give away when root, fsync, rename, fsync the directory. */
static int
oauth2_tokens_commit(int dfd, const char *base, const struct oauth2_out *o)
{
	struct stat dst;
	char tmp[512];
	int fd, r = 0;

	if (fstat(dfd, &dst) < 0)
		return -errno;
	if ((fd = oauth2_tmp_create(dfd, base, tmp, sizeof tmp)) < 0)
		return fd;
	if (geteuid() == 0 && dst.st_uid != 0 &&
	    fchown(fd, dst.st_uid, dst.st_gid) < 0)
		r = -errno;
	if (r == 0)
		r = oauth2_write_all(fd, o->buf, o->len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && renameat(dfd, tmp, dfd, base) < 0)
		r = -errno;
	if (r < 0) {
		unlinkat(dfd, tmp, 0);
		return r;
	}
	if (fsync(dfd) < 0)
		return -errno;
	oauth2_tmp_sweep(dfd, base);
	return 0;
}

int
oauth2_tokens_save(const char *path, const struct oauth2_tokens *t)
{
	struct oauth2_out o = { 0 };
	char dir[4096];
	const char *slash = strrchr(path, '/');
	int dfd, r;

	if (slash == NULL || slash[1] == '\0' ||
	    (size_t)(slash - path) >= sizeof dir)
		return -EINVAL;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	if ((dfd = oauth2_dir_open(dir[0] != '\0' ? dir : "/")) < 0)
		return dfd;
	if ((r = oauth2_tokens_format(t, &o)) == 0) {
		r = oauth2_tokens_commit(dfd, slash + 1, &o);
		explicit_bzero(o.buf, o.cap);
		free(o.buf);
	}
	close(dfd);
	return r;
}
