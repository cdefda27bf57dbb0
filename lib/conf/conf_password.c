/*
 * conf_password.c - conf_read_password: a profile's password from its
 * inline value, a password file or a systemd credential.  Files are
 * checked before they are read (regular, not readable by group or others,
 * small, no foreign symlink) and no error text ever contains the secret.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/link_rule.h"
#include "base/secret_file.h"
#include "base/util.h"
#include "conf_private.h"

static int
conf_pw_errorf(const struct conf_profile *p, const char *key,
    struct conf_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int
conf_pw_errorf(const struct conf_profile *p, const char *key,
    struct conf_error *err, int code, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(err->text, sizeof err->text, "%s:%u: profile %s: %s: ",
	    p->source_file != NULL ? p->source_file : "(config)",
	    p->source_line, p->name != NULL ? p->name : "?", key);
	if (n < 0 || (size_t)n >= sizeof err->text)
		return code;
	va_start(ap, fmt);
	vsnprintf(err->text + n, sizeof err->text - (size_t)n, fmt, ap);
	va_end(ap);
	return code;
}

/* Open `file` for reading after the symlink rule (base/link_rule.h).
 * O_NONBLOCK keeps a FIFO from hanging us until fstat refuses it. */
static int
conf_pw_open(const struct conf_profile *p, const char *key, const char *file,
    struct conf_error *err)
{
	struct link_rule_bad bad;
	char why[1024];
	int fd;

	fd = link_rule_open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK, &bad);
	if (fd == -EPERM && bad.link[0] != '\0') {
		link_rule_explain(&bad, file, "file", why, sizeof why);
		return conf_pw_errorf(p, key, err, -EPERM, "%s", why);
	}
	if (fd < 0)
		return conf_pw_errorf(p, key, err, fd, "cannot read %s: %s; "
		    "check the path and that mailstow may read it", file,
		    strerror(-fd));
	return fd;
}

static int
conf_pw_too_large(const struct conf_profile *p, const char *key,
    const char *file, struct conf_error *err)
{
	return conf_pw_errorf(p, key, err, -EINVAL, "%s is larger than %d "
	    "bytes; a password file holds the password alone", file,
	    CONF_PASSWORD_MAX);
}

static int
conf_pw_check(const struct conf_profile *p, const char *key, int fd,
    const char *file, struct conf_error *err)
{
	struct stat st;
	int r;

	switch ((r = secret_file_check(fd, CONF_PASSWORD_MAX, &st))) {
	case 0:
		return 0;
	case -EINVAL:
		return conf_pw_errorf(p, key, err, r, "%s is not a regular "
		    "file; give the path of the file that holds the password",
		    file);
	case -EPERM:
		return conf_pw_errorf(p, key, err, r, "%s is readable by "
		    "group or others (mode %04o); chmod 600 %s", file,
		    (unsigned)(st.st_mode & 07777), file);
	case -EFBIG:
		return conf_pw_too_large(p, key, file, err);
	default:
		return conf_pw_errorf(p, key, err, r, "cannot stat %s: %s; "
		    "check the file", file, strerror(-r));
	}
}

/* One trailing "\n" or "\r\n" goes; any other line break or NUL stays
 * and is refused, since it would end a protocol line early. */
static int
conf_pw_extract(const struct conf_profile *p, const char *key,
    const char *file, char *buf, size_t len, char **ret,
    struct conf_error *err)
{
	char *s;

	if (len > 0 && buf[len - 1] == '\n') {
		len--;
		if (len > 0 && buf[len - 1] == '\r')
			len--;
	}
	if (len == 0)
		return conf_pw_errorf(p, key, err, -EINVAL, "%s is empty; "
		    "write the password into it", file);
	if (memchr(buf, '\n', len) != NULL || memchr(buf, '\r', len) != NULL ||
	    memchr(buf, '\0', len) != NULL)
		return conf_pw_errorf(p, key, err, -EINVAL, "%s holds more "
		    "than one line or a NUL byte; write the password alone "
		    "on one line", file);
	if ((s = malloc(len + 1)) == NULL)
		return -ENOMEM;
	memcpy(s, buf, len);
	s[len] = '\0';
	*ret = s;
	return 0;
}

static int
conf_pw_read_file(const struct conf_profile *p, const char *key,
    const char *file, char **ret, struct conf_error *err)
{
	char buf[CONF_PASSWORD_MAX + 2];
	size_t len = 0;
	int fd, r;

	if ((fd = conf_pw_open(p, key, file, err)) < 0)
		return fd;
	if ((r = conf_pw_check(p, key, fd, file, err)) == 0) {
		r = secret_file_read(fd, buf, CONF_PASSWORD_MAX, &len);
		if (r == -EFBIG)
			r = conf_pw_too_large(p, key, file, err);
		else if (r < 0)
			conf_pw_errorf(p, key, err, r, "cannot read %s: %s; "
			    "check the file", file, strerror(-r));
		else
			r = conf_pw_extract(p, key, file, buf, len, ret, err);
	}
	explicit_bzero(buf, sizeof buf);
	close(fd);
	return r;
}

static int
conf_pw_credential(const struct conf_profile *p, char **ret,
    struct conf_error *err)
{
	const char *key = "auth.password_credential";
	const char *name = p->auth.password_credential;
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	char path[4096 + 256];
	int n;

	if (dir == NULL || dir[0] == '\0')
		return conf_pw_errorf(p, key, err, -ENOENT, "credential '%s' "
		    "needs $CREDENTIALS_DIRECTORY, which is not set; run "
		    "under systemd with LoadCredential=%s:/path/to/secret, "
		    "or use password_file", name, name);
	if (strchr(name, '/') != NULL || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0)
		return conf_pw_errorf(p, key, err, -EINVAL, "'%s' is not a "
		    "credential name; give the name without any '/'", name);
	n = snprintf(path, sizeof path, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof path)
		return conf_pw_errorf(p, key, err, -ENAMETOOLONG, "the path "
		    "of credential '%s' is too long; use a shorter name",
		    name);
	return conf_pw_read_file(p, key, path, ret, err);
}

int
conf_read_password(const struct conf_profile *p, char **ret,
    struct conf_error *err)
{
	char *s;

	err->text[0] = '\0';
	if (p->auth.password != NULL) {
		if ((s = strdup(p->auth.password)) == NULL)
			return -ENOMEM;
		*ret = s;
		return 0;
	}
	if (p->auth.password_file != NULL)
		return conf_pw_read_file(p, "auth.password_file",
		    p->auth.password_file, ret, err);
	if (p->auth.password_credential != NULL)
		return conf_pw_credential(p, ret, err);
	return conf_pw_errorf(p, "auth", err, -EINVAL, "no password source; "
	    "add password_file:, password_credential: or password:");
}

int
conf_read_mailbox_password(const struct conf_profile *p,
    const struct conf_mailbox *mb, char **ret, struct conf_error *err)
{
	struct conf_profile where = *p;

	/* Errors point at the line that lists the mailbox. */
	where.source_file = mb->source_file;
	where.source_line = mb->source_line;
	err->text[0] = '\0';
	return conf_pw_read_file(&where, "password_file", mb->password_file,
	    ret, err);
}
