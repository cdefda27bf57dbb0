/*
 * ctl_journal.c - encodes one journal entry in systemd's native protocol
 * (the datagram format of /run/systemd/journal/socket).  The daemon uses
 * it for MAILSTOW_JOURNAL_SOCKET, where a test owns the socket; under
 * journald proper it hands the same fields to sd_journal_sendv().
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "ctl/ctl.h"

/* journald's rule: upper case, digits and '_', not starting with a digit. */
static bool
ctl_journal_name_ok(const char *n)
{
	size_t i, len = strlen(n);

	if (len == 0 || len > 64 || (n[0] >= '0' && n[0] <= '9'))
		return false;
	for (i = 0; i < len; i++)
		if (!((n[i] >= 'A' && n[i] <= 'Z') ||
		    (n[i] >= '0' && n[i] <= '9') || n[i] == '_'))
			return false;
	return true;
}

static int
ctl_journal_put(char *buf, size_t buflen, size_t *pos, const void *p,
    size_t len)
{
	if (buflen - *pos < len)
		return -ENOBUFS;
	memcpy(buf + *pos, p, len);
	*pos += len;
	return 0;
}

static int
ctl_journal_one(const struct ctl_journal_field *f, char *buf, size_t buflen,
    size_t *pos)
{
	size_t nlen = strlen(f->name), vlen = strlen(f->value);
	uint8_t le[8];
	int i;

	if (memchr(f->value, '\n', vlen) == NULL) {
		if (ctl_journal_put(buf, buflen, pos, f->name, nlen) < 0 ||
		    ctl_journal_put(buf, buflen, pos, "=", 1) < 0 ||
		    ctl_journal_put(buf, buflen, pos, f->value, vlen) < 0 ||
		    ctl_journal_put(buf, buflen, pos, "\n", 1) < 0)
			return -ENOBUFS;
		return 0;
	}
	/* A value with a newline: NAME LF, 64-bit LE length, bytes, LF. */
	for (i = 0; i < 8; i++)
		le[i] = (uint8_t)((uint64_t)vlen >> (8 * i));
	if (ctl_journal_put(buf, buflen, pos, f->name, nlen) < 0 ||
	    ctl_journal_put(buf, buflen, pos, "\n", 1) < 0 ||
	    ctl_journal_put(buf, buflen, pos, le, sizeof le) < 0 ||
	    ctl_journal_put(buf, buflen, pos, f->value, vlen) < 0 ||
	    ctl_journal_put(buf, buflen, pos, "\n", 1) < 0)
		return -ENOBUFS;
	return 0;
}

int
ctl_journal_encode(const struct ctl_journal_field *f, size_t n, char *buf,
    size_t buflen)
{
	size_t i, pos = 0;
	int r;

	for (i = 0; i < n; i++) {
		if (f[i].value == NULL)
			continue;
		if (!ctl_journal_name_ok(f[i].name))
			return -EINVAL;
		if ((r = ctl_journal_one(&f[i], buf, buflen, &pos)) < 0)
			return r;
	}
	if (pos > INT32_MAX)
		return -ENOBUFS;
	return (int)pos;
}
