/*
 * ctl_proto.c - request parsing and the error codes of the control
 * protocol.  The daemon parses every request with this code, so it is the
 * single place that decides what a peer may send: bounded, printable, one
 * of four commands.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ctl/ctl.h"

static const struct {
	const char *name;
	int	 err;
} ctl_errcodes[] = {
	{ "busy", -EBUSY },
	{ "noent", -ENOENT },
	{ "inval", -EINVAL },
	{ "perm", -EACCES },
	{ "limit", -EMFILE },
	{ "shutdown", -ESHUTDOWN },
	{ "proto", -EPROTO },
	{ "io", -EIO },
};

const char *
ctl_errcode_name(int e)
{
	size_t i;

	for (i = 0; i < sizeof ctl_errcodes / sizeof *ctl_errcodes; i++)
		if (ctl_errcodes[i].err == e)
			return ctl_errcodes[i].name;
	return "io";
}

int
ctl_errcode_parse(const char *word, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof ctl_errcodes / sizeof *ctl_errcodes; i++)
		if (strlen(ctl_errcodes[i].name) == len &&
		    memcmp(ctl_errcodes[i].name, word, len) == 0)
			return ctl_errcodes[i].err;
	return -EPROTO;
}

/* Profile names are config keys: printable ASCII without spaces. */
static bool
ctl_name_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len >= CTL_PROFILE_MAX)
		return false;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

static bool
ctl_word_is(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && memcmp(s, word, len) == 0;
}

static int
ctl_parse_fail(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "%s (requests: run PROFILE, status, "
	    "status json, reload)", what);
	return -EINVAL;
}

int
ctl_request_parse(const char *line, size_t len, struct ctl_request *ret,
    char *err, size_t errlen)
{
	const char *arg;
	size_t i, wlen;
	bool has_arg;

	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len >= CTL_LINE_MAX)
		return ctl_parse_fail(err, errlen, "request line too long");
	for (i = 0; i < len; i++)
		if ((unsigned char)line[i] < ' ' || (unsigned char)line[i] == 0x7f)
			return ctl_parse_fail(err, errlen,
			    "control byte in the request");
	for (wlen = 0; wlen < len && line[wlen] != ' '; wlen++)
		;
	has_arg = wlen < len;
	arg = has_arg ? line + wlen + 1 : line + len;
	len = wlen < len ? len - wlen - 1 : 0;
	if (ctl_word_is(line, wlen, "run")) {
		if (!ctl_name_ok(arg, len))
			return ctl_parse_fail(err, errlen,
			    "'run' needs one profile name");
		ret->cmd = CTL_CMD_RUN;
		memcpy(ret->profile, arg, len);
		ret->profile[len] = '\0';
		return 0;
	}
	if (ctl_word_is(line, wlen, "status") && !has_arg) {
		ret->cmd = CTL_CMD_STATUS;
		ret->profile[0] = '\0';
		return 0;
	}
	if (ctl_word_is(line, wlen, "status") && ctl_word_is(arg, len, "json")) {
		ret->cmd = CTL_CMD_STATUS_JSON;
		ret->profile[0] = '\0';
		return 0;
	}
	if (ctl_word_is(line, wlen, "reload") && !has_arg) {
		ret->cmd = CTL_CMD_RELOAD;
		ret->profile[0] = '\0';
		return 0;
	}
	return ctl_parse_fail(err, errlen, "unknown request");
}

uint64_t
ctl_retry_delay_ms(uint64_t base_ms, unsigned attempt, uint64_t cap_ms)
{
	uint64_t d = base_ms;
	unsigned i;

	if (attempt == 0)
		attempt = 1;
	for (i = 1; i < attempt && d < cap_ms; i++)
		d = d > UINT64_MAX / 2 ? UINT64_MAX : d * 2;
	return d < cap_ms ? d : cap_ms;
}
