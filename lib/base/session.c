/*
 * session.c - names of session failure categories, for protocols and logs.
 */
#include "session.h"
#include "util.h"

static const char *const session_fail_names[] = {
	"ok", "connect", "tls", "protocol", "auth", "timeout", "local",
	"cancelled",
};
_Static_assert(NELEM(session_fail_names) == _SESSION_FAIL_MAX,
    "one name per failure category");

const char *
session_fail_name(enum session_fail f)
{
	if ((unsigned)f >= _SESSION_FAIL_MAX)
		return "unknown";
	return session_fail_names[f];
}
