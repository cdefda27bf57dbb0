/*
 * secret_file.c - checks an open secret file against the rules in
 * secret_file.h and reads it whole, through EINTR, bounded.
 */
#include <errno.h>
#include <unistd.h>

#include "secret_file.h"

int
secret_file_check(int fd, size_t max, struct stat *st)
{
	if (fstat(fd, st) < 0)
		return -errno;
	if (!S_ISREG(st->st_mode))
		return -EINVAL;
	if (st->st_mode & 077)
		return -EPERM;
	if (st->st_size < 0 || (unsigned long long)st->st_size > max)
		return -EFBIG;
	return 0;
}

int
secret_file_read(int fd, char *buf, size_t max, size_t *ret_len)
{
	size_t len = 0;
	ssize_t n;

	while (len < max + 1) {
		n = read(fd, buf + len, max + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max)
		return -EFBIG;
	*ret_len = len;
	return 0;
}
