/*
 * mime.c - finding fields in an RFC 5322 header (RFC 5322 2.2): lines
 * ending in LF or CRLF, folded lines joined, the header ending at the
 * first empty line, at most MIME_MAX_FIELDS fields looked at.  Turns the
 * fields the index keeps into clean UTF-8.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime_private.h"

void
mime_scan_init(struct mime_scan *sc, const char *hdr, size_t len)
{
	sc->p = hdr;
	sc->end = hdr + len;
	sc->nfields = 0;
	sc->maxfields = MIME_MAX_FIELDS;
}

/* One line at p: *content_end before CR LF, returns the next line. */
static const char *
mime_line(const char *p, const char *end, const char **content_end)
{
	const char *eol, *ce;

	eol = memchr(p, '\n', (size_t)(end - p));
	ce = eol != NULL ? eol : end;
	if (ce > p && ce[-1] == '\r')
		ce--;
	*content_end = ce;
	return eol != NULL ? eol + 1 : end;
}

static bool
mime_is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

bool
mime_scan_next(struct mime_scan *sc, struct mime_field *f)
{
	const char *start, *ce, *next, *colon, *vend;

	while (sc->p < sc->end && sc->nfields < sc->maxfields) {
		start = sc->p;
		next = mime_line(start, sc->end, &ce);
		if (ce == start) {
			/* The empty line: the body follows. */
			sc->p = sc->end;
			return false;
		}
		if (mime_is_wsp(*start)) {
			/* A continuation with no field before it. */
			sc->p = next;
			continue;
		}
		vend = ce;
		while (next < sc->end && mime_is_wsp(*next))
			next = mime_line(next, sc->end, &vend);
		sc->p = next;
		sc->nfields++;
		if ((colon = memchr(start, ':', (size_t)(ce - start))) == NULL)
			continue;	/* not a field; RFC 5322 has no use for it */
		f->name = start;
		f->namelen = (size_t)(colon - start);
		/* obs-optional (RFC 5322 4.5.3): "Subject :" */
		while (f->namelen > 0 && mime_is_wsp(start[f->namelen - 1]))
			f->namelen--;
		f->value = colon + 1;
		f->valuelen = (size_t)(vend - f->value);
		return true;
	}
	return false;
}

size_t
mime_unfold(const char *v, size_t len, char *out, size_t max)
{
	size_t i = 0, o = 0;

	while (i < len && (mime_is_wsp(v[i]) || v[i] == '\r' || v[i] == '\n'))
		i++;
	for (; i < len && o < max; i++) {
		/* Within a value every LF starts a continuation line. */
		if (v[i] == '\n' || v[i] == '\0' ||
		    (v[i] == '\r' && i + 1 < len && v[i + 1] == '\n'))
			continue;
		out[o++] = v[i];
	}
	while (o > 0 && mime_is_wsp(out[o - 1]))
		o--;
	return o;
}

static bool
mime_name_is(const struct mime_field *f, const char *name)
{
	return f->namelen == strlen(name) &&
	    strncasecmp(f->name, name, f->namelen) == 0;
}

char *
mime_header_get(const char *hdr, size_t len, const char *name, size_t max)
{
	struct mime_scan sc;
	struct mime_field f;
	size_t cap, n;
	char *out;

	mime_scan_init(&sc, hdr, len);
	while (mime_scan_next(&sc, &f)) {
		if (!mime_name_is(&f, name))
			continue;
		cap = f.valuelen < max ? f.valuelen : max;
		if ((out = malloc(cap + 1)) == NULL)
			return NULL;
		n = mime_unfold(f.value, f.valuelen, out, cap);
		out[n] = '\0';
		return out;
	}
	return NULL;
}

enum mime_kind { MK_MESSAGE_ID, MK_DATE, MK_FROM, MK_TO, MK_SUBJECT, MK_MAX };

static const char *const mime_kind_names[MK_MAX] = {
	"Message-ID", "Date", "From", "To", "Subject",
};

/* Unfold, decode where RFC 2047 allows it, clean: a new string. */
static char *
mime_field_text(const struct mime_field *f, enum mime_kind kind)
{
	char raw[MIME_FIELD_MAX], dec[2 * MIME_FIELD_MAX];
	char clean[MIME_FIELD_MAX + 1];
	const char *src = raw;
	size_t n;
	char *out;

	n = mime_unfold(f->value, f->valuelen, raw, sizeof raw);
	if (kind == MK_SUBJECT || kind == MK_FROM || kind == MK_TO) {
		n = mime_decode_words(raw, n, dec, sizeof dec, kind != MK_SUBJECT);
		src = dec;
	}
	/* Sized to the text: a run may hold thousands of these at once. */
	n = mime_utf8_clean(src, n, clean, MIME_FIELD_MAX);
	if ((out = malloc(n + 1)) == NULL)
		return NULL;
	memcpy(out, clean, n);
	out[n] = '\0';
	return out;
}

static char **
mime_slot(struct mime_fields *mf, enum mime_kind kind)
{
	switch (kind) {
	case MK_MESSAGE_ID: return &mf->message_id;
	case MK_DATE: return &mf->date;
	case MK_FROM: return &mf->from;
	case MK_TO: return &mf->to;
	default: return &mf->subject;
	}
}

int
mime_header_fields(const char *hdr, size_t len, struct mime_fields *ret)
{
	struct mime_fields mf;
	struct mime_scan sc;
	struct mime_field f;
	char **slot;
	int k;

	memset(&mf, 0, sizeof mf);
	mime_scan_init(&sc, hdr, len);
	while (mime_scan_next(&sc, &f)) {
		for (k = 0; k < MK_MAX; k++)
			if (mime_name_is(&f, mime_kind_names[k]))
				break;
		/* The first of repeated fields counts. */
		if (k == MK_MAX || *(slot = mime_slot(&mf, k)) != NULL)
			continue;
		if ((*slot = mime_field_text(&f, k)) == NULL) {
			mime_fields_free(&mf);
			return -ENOMEM;
		}
	}
	*ret = mf;
	return 0;
}

void
mime_fields_free(struct mime_fields *mf)
{
	if (mf == NULL)
		return;
	free(mf->message_id);
	free(mf->date);
	free(mf->from);
	free(mf->to);
	free(mf->subject);
	memset(mf, 0, sizeof *mf);
}
