/*
 * secret_file.h - the rules a file that holds a secret keeps before it is
 * read (a regular file that neither group nor others may read, of bounded
 * size), checked on the open descriptor so that no rename can slip in
 * between, and reading it whole.  Password files and credentials (conf/)
 * and OAuth2 token files (oauth2/) use it; each opens the file under its
 * own symlink rule and words its own errors.
 */
#ifndef MAILSTOW_BASE_SECRET_FILE_H
#define MAILSTOW_BASE_SECRET_FILE_H

#include <sys/stat.h>

#include <stddef.h>

/*
 * Check the open file `fd`, in this order: -errno when fstat() fails;
 * -EINVAL when it is not a regular file; -EPERM when group or others may
 * read it; -EFBIG when it is larger than `max` bytes; else 0.  `st` is
 * filled whenever fstat() worked, for the caller's message.
 */
int	secret_file_check(int fd, size_t max, struct stat *st);

/*
 * Read the file from its position to its end into `buf`, which holds
 * max + 1 bytes: one byte past the limit catches a file that grew after
 * the check (-EFBIG).  0 with *ret_len, or -errno from read().  The
 * caller wipes `buf`.
 */
int	secret_file_read(int fd, char *buf, size_t max, size_t *ret_len);

#endif
