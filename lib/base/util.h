/*
 * util.h - small checked helpers every module uses: number parsing that
 * refuses overflow and junk, durations, hex, escaping untrusted text for
 * display, and cleanup attributes for synchronous code.
 */
#ifndef MAILSTOW_BASE_UTIL_H
#define MAILSTOW_BASE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Decimal without sign, leading '+', spaces or overflow.  `len` bytes of `s`
 * are read (no NUL needed).  0 on success, -EINVAL for junk or empty input,
 * -ERANGE above the type's maximum.  *ret is written only on success.
 */
int	parse_u32(const char *s, size_t len, uint32_t *ret);
int	parse_u64(const char *s, size_t len, uint64_t *ret);

/*
 * Duration: a number with unit s, m, h or d ("90s", "15m", "2h", "1d"),
 * or several joined ("1h30m").  Result in milliseconds.  -EINVAL, -ERANGE.
 */
int	parse_duration_ms(const char *s, uint64_t *ret);

/* Size: bytes with optional K, M, G suffix (binary: 1K = 1024). */
int	parse_size(const char *s, uint64_t *ret);

/* Lowercase hex of `len` bytes into `out` (2*len+1 bytes, NUL-terminated). */
void	hex_encode(const uint8_t *data, size_t len, char *out);
/* Parse exactly 2*len hex digits. -EINVAL on anything else. */
int	hex_decode(const char *hex, uint8_t *out, size_t len);

/*
 * Copy untrusted bytes for display: printable ASCII and well-formed UTF-8
 * pass, control bytes (CR, LF, ESC, NUL, ...), bytes of malformed UTF-8,
 * C1 controls, line separators and bidirectional overrides become \xNN
 * (4 bytes of output per input byte at most), backslash becomes \\.  The
 * result is always NUL-terminated and cut at `dstlen`-1 bytes, never
 * inside a character.  This is what stops a server from forging log lines.
 */
void	str_escape(char *dst, size_t dstlen, const void *src, size_t srclen);

/* strdup that returns NULL on NULL input. */
char	*xstrdup_or_null(const char *s);

/* Overwrite and free a secret. NULL is fine. */
void	secret_free(char *s);

/* Current wall-clock time as an ISO 8601 UTC string "2026-11-25T19:14:55Z". */
void	time_iso8601(int64_t unix_seconds, char out[32]);

static inline void
freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ __attribute__((cleanup(freep)))

#endif
