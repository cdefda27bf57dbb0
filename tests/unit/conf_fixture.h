/*
 * conf_fixture.h - the temporary directory the config loader tests write
 * their configs and password files into: cmocka setup/teardown, a path in
 * it, a file written with a given mode, a config loaded from it.  Static
 * functions: each test binary includes it once, after defining
 * CONF_FX_TAG if the directory's name should say which test left it.
 */
#ifndef MAILSTOW_TEST_CONF_FIXTURE_H
#define MAILSTOW_TEST_CONF_FIXTURE_H

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/util.h"
#include "conf/conf.h"

/* Not every includer uses every helper. */
#define CONF_FX_FN	static __attribute__((unused))

#ifndef CONF_FX_TAG
#define CONF_FX_TAG	"conf"
#endif

static char tmpdir[64];

CONF_FX_FN int
tmp_setup(void **state)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/mailstow-%s-XXXXXX",
	    CONF_FX_TAG);
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	return 0;
}

CONF_FX_FN int
tmp_teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

CONF_FX_FN void
tmp_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tmpdir, name);
}

/* Write `len` bytes to tmpdir/name with `mode` (chmod after: umask). */
CONF_FX_FN void
write_file_len(const char *name, const void *data, size_t len, mode_t mode)
{
	char path[256];
	int fd;

	tmp_path(path, sizeof path, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	assert_int_equal(chmod(path, mode), 0);
}

CONF_FX_FN void
write_file(const char *name, const char *text, mode_t mode)
{
	write_file_len(name, text, strlen(text), mode);
}

CONF_FX_FN int
load_tmp(const char *name, struct conf **c, struct conf_error *err)
{
	char path[256];

	tmp_path(path, sizeof path, name);
	return conf_load(path, c, err);
}

#endif
