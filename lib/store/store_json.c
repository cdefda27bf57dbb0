/*
 * store_json.c - writing index text to the outside safely: JSON strings
 * that are valid whatever bytes the index holds (bad UTF-8 becomes
 * U+FFFD), and terminal text where control bytes, C1 controls and bad
 * UTF-8 are shown as \xNN so that stored server text cannot drive a
 * terminal.
 */
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "store_private.h"

/* Length of the valid UTF-8 sequence at p (1-4), or 0 if it is not one:
 * overlong forms, surrogates and values above U+10FFFF are invalid. */
size_t
store_utf8_len(const unsigned char *p, size_t n)
{
	uint32_t cp;
	size_t len, i;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		cp = p[0] & 0x07;
	} else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static void
store_json_byte(FILE *out, unsigned char c)
{
	switch (c) {
	case '"':
		fputs("\\\"", out);
		break;
	case '\\':
		fputs("\\\\", out);
		break;
	case '\n':
		fputs("\\n", out);
		break;
	case '\r':
		fputs("\\r", out);
		break;
	case '\t':
		fputs("\\t", out);
		break;
	default:
		if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\u%04x", c);
		else
			putc(c, out);
	}
}

void
store_json_str(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n, len;

	if (s == NULL) {
		fputs("null", out);
		return;
	}
	n = strlen(s);
	putc('"', out);
	while (n > 0) {
		if (*p < 0x80) {
			store_json_byte(out, *p);
			len = 1;
		} else if ((len = store_utf8_len(p, n)) > 0)
			fwrite(p, 1, len, out);
		else {
			fputs("\\ufffd", out);
			len = 1;
		}
		p += len;
		n -= len;
	}
	putc('"', out);
}

/* "key":value, with a comma before unless first. */
void
store_json_kv_int(FILE *out, const char *key, int64_t v, bool first)
{
	fprintf(out, "%s\"%s\":%lld", first ? "" : ",", key, (long long)v);
}

/* A time as ISO 8601 UTC, or null when the column is NULL. */
void
store_json_kv_time(FILE *out, const char *key, sqlite3_stmt *st, int col,
    bool first)
{
	char buf[32];

	fprintf(out, "%s\"%s\":", first ? "" : ",", key);
	if (sqlite3_column_type(st, col) == SQLITE_NULL) {
		fputs("null", out);
		return;
	}
	time_iso8601(sqlite3_column_int64(st, col), buf);
	store_json_str(out, buf);
}

void
store_json_kv_col(FILE *out, const char *key, sqlite3_stmt *st, int col,
    bool first)
{
	fprintf(out, "%s\"%s\":", first ? "" : ",", key);
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		fputs("null", out);
	else if (sqlite3_column_type(st, col) == SQLITE_INTEGER)
		fprintf(out, "%lld", (long long)sqlite3_column_int64(st, col));
	else
		store_json_str(out, (const char *)sqlite3_column_text(st, col));
}

/* Returns the columns printed, counting a character as one. */
size_t
store_text_str(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n, len, cols = 0;

	if (s == NULL) {
		putc('-', out);
		return 1;
	}
	n = strlen(s);
	while (n > 0) {
		len = *p < 0x80 ? 1 : store_utf8_len(p, n);
		/* C1 controls are U+0080..U+009F, encoded as C2 80..C2 9F. */
		if (len == 0 || (len == 1 && (*p < 0x20 || *p == 0x7f)) ||
		    (len == 2 && p[0] == 0xc2 && p[1] < 0xa0)) {
			fprintf(out, "\\x%02x", *p);
			len = 1;
			cols += 4;
		} else {
			fwrite(p, 1, len, out);
			cols++;
		}
		p += len;
		n -= len;
	}
	return cols;
}

void
store_text_col(FILE *out, sqlite3_stmt *st, int col)
{
	store_text_str(out, (const char *)sqlite3_column_text(st, col));
}

void
store_text_time(FILE *out, sqlite3_stmt *st, int col)
{
	char buf[32];

	if (sqlite3_column_type(st, col) == SQLITE_NULL) {
		putc('-', out);
		return;
	}
	time_iso8601(sqlite3_column_int64(st, col), buf);
	fputs(buf, out);
}
