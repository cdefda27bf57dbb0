/*
 * store_fixture.h - what the store tests share: an archive root in a fresh
 * temporary directory, removed with everything in it afterwards, and
 * SHA-256 names.  Unless the includer defines STORE_FX_CUSTOM (it has a
 * struct fx of its own), also the plain fixture: cmocka setup/teardown, a
 * read-write open, a blob written in two halves, a message to commit, and
 * what tmp/ holds.
 * Static functions: each test binary includes it once, after defining
 * _GNU_SOURCE (nftw()).
 */
#ifndef MAILSTOW_TEST_STORE_FIXTURE_H
#define MAILSTOW_TEST_STORE_FIXTURE_H

#include <sys/stat.h>

#include <dirent.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "base/util.h"
#include "store/store.h"

/* Not every includer uses every helper. */
#define STORE_FX_FN	static __attribute__((unused))

/* In the temporary directory's name: which test left it behind, if one
 * crashes before its teardown. */
#ifndef STORE_FX_TAG
#define STORE_FX_TAG	"store"
#endif

STORE_FX_FN int
store_fx_rm_entry(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* A fresh /tmp/mailstow-test-<tag>-XXXXXX in `dir`, `root` its archive/. */
STORE_FX_FN void
store_fx_mkroot(char *dir, size_t dirlen, char *root, size_t rootlen)
{
	snprintf(dir, dirlen, "/tmp/mailstow-test-%s-XXXXXX", STORE_FX_TAG);
	assert_non_null(mkdtemp(dir));
	snprintf(root, rootlen, "%s/archive", dir);
}

/* Entries of a directory, without "." and "..". */
STORE_FX_FN int
store_fx_entries(const char *path)
{
	struct dirent *de;
	DIR *d;
	int n = 0;

	assert_non_null(d = opendir(path));
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

STORE_FX_FN void
store_fx_rmtree(const char *dir)
{
	nftw(dir, store_fx_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

STORE_FX_FN void
sha256_hex(const void *data, size_t len, char out[65])
{
	uint8_t md[32];
	unsigned int n;

	assert_int_equal(EVP_Digest(data, len, md, &n, EVP_sha256(), NULL), 1);
	hex_encode(md, 32, out);
}

#ifndef STORE_FX_CUSTOM
struct fx {
	char	dir[64];
	char	root[128];
	char	err[512];
};

STORE_FX_FN int
store_fx_setup(void **state)
{
	struct fx *fx = calloc(1, sizeof *fx);

	assert_non_null(fx);
	store_fx_mkroot(fx->dir, sizeof fx->dir, fx->root, sizeof fx->root);
	*state = fx;
	return 0;
}

STORE_FX_FN int
store_fx_teardown(void **state)
{
	struct fx *fx = *state;

	store_fx_rmtree(fx->dir);
	free(fx);
	return 0;
}

/* Entries of the archive's tmp/, and whether one of them is there. */
STORE_FX_FN int
tmp_entries(struct fx *fx)
{
	char path[256];

	snprintf(path, sizeof path, "%.200s/tmp", fx->root);
	return store_fx_entries(path);
}

STORE_FX_FN bool
tmp_has(struct fx *fx, const char *name)
{
	char path[512];

	snprintf(path, sizeof path, "%.128s/tmp/%.64s", fx->root, name);
	return access(path, F_OK) == 0;
}

STORE_FX_FN struct store *
open_rw(struct fx *fx)
{
	struct store *s = NULL;

	assert_int_equal(store_open(fx->root, STORE_RDWR, &s, fx->err,
	    sizeof fx->err), 0);
	return s;
}

STORE_FX_FN struct store_blob *
make_blob(struct store *s, const char *data)
{
	struct store_blob *b;
	size_t len = strlen(data), half = len / 2;

	assert_int_equal(store_blob_begin(s, &b), 0);
	/* Two writes: the hash must run across write boundaries. */
	assert_int_equal(store_blob_write(b, data, half), 0);
	assert_int_equal(store_blob_write(b, data + half, len - half), 0);
	assert_int_equal(store_blob_end(b), 0);
	return b;
}

STORE_FX_FN struct store_msg
msg(struct store_blob *b, const char *user, const char *folder, uint32_t uid)
{
	struct store_msg m = {
		.blob = b, .archive_user = user, .profile = user,
		.mailbox = user, .folder = folder, .uidvalidity = 100,
		.uid = uid,
	};
	return m;
}
#endif /* !STORE_FX_CUSTOM */

#endif
