/*
 * conf_yaml.c - a config file from disk (not through a symlink someone
 * else owns) to a tree of scalars, lists and mappings with line and column.
 * This is where the input is bounded: file size, nesting depth, string
 * length and node count, and where YAML features we do not want (aliases,
 * tags, several documents) are refused before any value is looked at.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "base/link_rule.h"
#include "base/util.h"
#include "conf_private.h"

struct conf_yaml {
	const char	*file;
	const char	*data;
	size_t		 len;
	struct conf_error *err;
	struct conf_node *root;
	struct conf_node *stack[CONF_MAX_DEPTH];
	size_t		 depth;
	size_t		 nodes;
	bool		 seen_doc;
};

static const char *
conf_open_hint(int e)
{
	switch (e) {
	case ENOENT:
		return "check the path (mailstow -c FILE)";
	case EACCES:
		return "make it readable by the user mailstow runs as";
	default:
		return "check the path and its permissions";
	}
}

static int
conf_read_fd(int fd, const char *path, size_t size, char **ret_data,
    size_t *ret_len, struct conf_error *err)
{
	size_t cap = size + 1, len = 0;
	char *buf;

	/* One byte more than fstat promised: a file that grows while we read
	 * is refused instead of being read half. */
	if ((buf = malloc(cap + 1)) == NULL)
		return -ENOMEM;
	for (;;) {
		ssize_t n = read(fd, buf + len, cap - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int r = -errno;

			conf_data_free(buf, cap + 1);
			snprintf(err->text, sizeof err->text,
			    "%s: cannot read: %s; check the file", path,
			    strerror(-r));
			return r;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == cap) {
			conf_data_free(buf, cap + 1);
			snprintf(err->text, sizeof err->text,
			    "%s: the file changed while it was read; try again",
			    path);
			return -EAGAIN;
		}
	}
	buf[len] = '\0';
	*ret_data = buf;
	*ret_len = len;
	return 0;
}

int
conf_read_file(const char *path, char **ret_data, size_t *ret_len,
    mode_t *ret_mode, struct conf_error *err)
{
	return conf_read_file_max(path, CONF_MAX_FILE_SIZE, ret_data, ret_len,
	    ret_mode, err);
}

/*
 * Open a config file after the symlink rule of password files: every
 * link on the way is followed only when root or we own it, since whoever
 * owns a link picks which profiles, servers and password files we use.
 * O_NONBLOCK: a FIFO put in place of the config must not hang us; it is
 * refused below as not a regular file.
 */
static int
conf_open(const char *path, struct conf_error *err)
{
	struct link_rule_bad bad;
	int fd;

	fd = link_rule_open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK, &bad);
	if (fd == -EPERM && bad.link[0] != '\0')
		link_rule_explain(&bad, path, "file", err->text,
		    sizeof err->text);
	else if (fd < 0)
		snprintf(err->text, sizeof err->text, "%s: cannot open: %s; %s",
		    path, strerror(-fd), conf_open_hint(-fd));
	return fd;
}

int
conf_read_file_max(const char *path, size_t max, char **ret_data,
    size_t *ret_len, mode_t *ret_mode, struct conf_error *err)
{
	struct stat st;
	int fd, r;

	if ((fd = conf_open(path, err)) < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		snprintf(err->text, sizeof err->text, "%s: cannot stat: %s; %s",
		    path, strerror(-r), conf_open_hint(-r));
	} else if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		snprintf(err->text, sizeof err->text,
		    "%s: not a regular file; give the path of a YAML file",
		    path);
	} else if (st.st_size > (off_t)max) {
		r = -EINVAL;
		snprintf(err->text, sizeof err->text,
		    "%s: larger than %zu bytes; a file this large is a "
		    "mistake (split profiles into conf.d/ or mailbox lists "
		    "into several profiles)", path, max);
	} else {
		r = conf_read_fd(fd, path, (size_t)st.st_size, ret_data,
		    ret_len, err);
		if (r == 0 && ret_mode != NULL)
			*ret_mode = st.st_mode;
	}
	close(fd);
	return r;
}

void
conf_data_free(char *data, size_t len)
{
	/* The file may hold an inline password. */
	if (data == NULL)
		return;
	explicit_bzero(data, len);
	free(data);
}

void
conf_node_free(struct conf_node *n)
{
	size_t i;

	if (n == NULL)
		return;
	if (n->str != NULL) {
		explicit_bzero(n->str, n->len);
		free(n->str);
	}
	for (i = 0; n->type == CONF_NODE_SEQ && i < n->n; i++)
		conf_node_free(n->items[i]);
	for (i = 0; n->type == CONF_NODE_MAP && i < n->n; i++) {
		conf_node_free(n->pairs[i].key);
		conf_node_free(n->pairs[i].value);
	}
	free(n->items);
	free(n->pairs);
	free(n);
}

/* The key path of the place the parser is at, for errors in this file. */
static void
conf_yaml_path(const struct conf_yaml *y, char *buf, size_t len)
{
	char seg[CONF_MAX_PATH];
	size_t i;

	buf[0] = '\0';
	for (i = 0; i < y->depth; i++) {
		const struct conf_node *n = y->stack[i];
		bool top = i + 1 == y->depth;

		if (n->type == CONF_NODE_SEQ) {
			conf_path_index(seg, sizeof seg, buf,
			    top ? n->n : n->n - 1);
			snprintf(buf, len, "%s", seg);
		} else if (n->n > 0 && (!top || n->pairs[n->n - 1].value == NULL)) {
			char key[72];

			conf_show(n->pairs[n->n - 1].key, key, sizeof key);
			conf_path(seg, sizeof seg, buf, key);
			snprintf(buf, len, "%s", seg);
		}
	}
}

static int
conf_yaml_errorf(struct conf_yaml *y, size_t line, size_t col, int code,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int
conf_yaml_errorf(struct conf_yaml *y, size_t line, size_t col, int code,
    const char *fmt, ...)
{
	char path[CONF_MAX_PATH];
	va_list ap;
	int n;

	conf_yaml_path(y, path, sizeof path);
	n = snprintf(y->err->text, sizeof y->err->text, "%s:%zu:%zu: %s: ",
	    y->file, line + 1, col + 1, path[0] != '\0' ? path : "(top level)");
	if (n < 0 || (size_t)n >= sizeof y->err->text)
		return code;
	va_start(ap, fmt);
	vsnprintf(y->err->text + n, sizeof y->err->text - (size_t)n, fmt, ap);
	va_end(ap);
	return code;
}

static int
conf_yaml_grow(void **arr, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap == 0 ? 4 : *cap * 2;
	if ((p = reallocarray(*arr, ncap, size)) == NULL)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

/* Hang `n` under the innermost open container (or make it the root). */
static int
conf_yaml_attach(struct conf_yaml *y, struct conf_node *n,
    const yaml_mark_t *m)
{
	struct conf_node *p;

	if (y->depth == 0) {
		y->root = n;
		return 0;
	}
	p = y->stack[y->depth - 1];
	if (p->type == CONF_NODE_SEQ) {
		if (conf_yaml_grow((void **)&p->items, &p->cap, p->n,
		    sizeof *p->items) < 0)
			return -ENOMEM;
		p->items[p->n++] = n;
		return 0;
	}
	if (p->n > 0 && p->pairs[p->n - 1].value == NULL) {
		p->pairs[p->n - 1].value = n;
		return 0;
	}
	if (n->type != CONF_NODE_SCALAR)
		return conf_yaml_errorf(y, m->line, m->column, -EINVAL,
		    "a key must be a name, not a %s; write 'name: value'",
		    n->type == CONF_NODE_MAP ? "mapping" : "list");
	if (conf_yaml_grow((void **)&p->pairs, &p->cap, p->n,
	    sizeof *p->pairs) < 0)
		return -ENOMEM;
	p->pairs[p->n].key = n;
	p->pairs[p->n].value = NULL;
	p->n++;
	return 0;
}

static int
conf_yaml_new(struct conf_yaml *y, enum conf_node_type type,
    const yaml_event_t *ev, const yaml_char_t *tag, struct conf_node **ret)
{
	const yaml_mark_t *m = &ev->start_mark;
	struct conf_node *n;

	if (tag != NULL)
		return conf_yaml_errorf(y, m->line, m->column, -EINVAL,
		    "YAML tags (!...) are not supported; remove the tag");
	if (++y->nodes > CONF_MAX_NODES)
		return conf_yaml_errorf(y, m->line, m->column, -EINVAL,
		    "more than %u values in one file; split the profiles "
		    "into conf.d/", CONF_MAX_NODES);
	if ((n = calloc(1, sizeof *n)) == NULL)
		return -ENOMEM;
	n->type = type;
	n->line = m->line + 1 > UINT32_MAX ? UINT32_MAX : (unsigned)m->line + 1;
	n->col = m->column + 1 > UINT32_MAX ? UINT32_MAX :
	    (unsigned)m->column + 1;
	*ret = n;
	return 0;
}

static int
conf_yaml_scalar(struct conf_yaml *y, const yaml_event_t *ev)
{
	const yaml_mark_t *m = &ev->start_mark;
	struct conf_node *n;
	size_t len = ev->data.scalar.length;
	int r;

	if (len > CONF_MAX_STRING)
		return conf_yaml_errorf(y, m->line, m->column, -EINVAL,
		    "value longer than %u bytes; shorten it", CONF_MAX_STRING);
	if ((r = conf_yaml_new(y, CONF_NODE_SCALAR, ev, ev->data.scalar.tag,
	    &n)) < 0)
		return r;
	n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	n->len = len;
	if ((n->str = malloc(len + 1)) == NULL) {
		free(n);
		return -ENOMEM;
	}
	memcpy(n->str, ev->data.scalar.value, len);
	n->str[len] = '\0';
	if ((r = conf_yaml_attach(y, n, m)) < 0)
		conf_node_free(n);
	return r;
}

static int
conf_yaml_open(struct conf_yaml *y, const yaml_event_t *ev,
    enum conf_node_type type, const yaml_char_t *tag)
{
	const yaml_mark_t *m = &ev->start_mark;
	struct conf_node *n;
	int r;

	/* This bound also keeps conf_node_free's recursion shallow. */
	if (y->depth == CONF_MAX_DEPTH)
		return conf_yaml_errorf(y, m->line, m->column, -EINVAL,
		    "nested deeper than %u levels; a config is never this "
		    "deep, check the indentation", CONF_MAX_DEPTH);
	if ((r = conf_yaml_new(y, type, ev, tag, &n)) < 0)
		return r;
	if ((r = conf_yaml_attach(y, n, m)) < 0) {
		conf_node_free(n);
		return r;
	}
	y->stack[y->depth++] = n;
	return 0;
}

static int
conf_yaml_event(struct conf_yaml *y, const yaml_event_t *ev)
{
	const yaml_mark_t *m = &ev->start_mark;

	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (y->seen_doc)
			return conf_yaml_errorf(y, m->line, m->column, -EINVAL,
			    "a second YAML document ('---'); keep one "
			    "document per file");
		y->seen_doc = true;
		return 0;
	case YAML_ALIAS_EVENT:
		/* Aliases would let a small file expand into a huge tree
		 * ("billion laughs"); configs do not need them. */
		return conf_yaml_errorf(y, m->line, m->column, -EINVAL,
		    "YAML aliases (*name) are not allowed; write the value "
		    "out in full");
	case YAML_SCALAR_EVENT:
		return conf_yaml_scalar(y, ev);
	case YAML_SEQUENCE_START_EVENT:
		return conf_yaml_open(y, ev, CONF_NODE_SEQ,
		    ev->data.sequence_start.tag);
	case YAML_MAPPING_START_EVENT:
		return conf_yaml_open(y, ev, CONF_NODE_MAP,
		    ev->data.mapping_start.tag);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		if (y->depth > 0)
			y->depth--;
		return 0;
	default:
		return 0;
	}
}

/* libyaml's reader reports a byte offset; turn it into line and column. */
static void
conf_yaml_offset(const struct conf_yaml *y, size_t off, size_t *line,
    size_t *col)
{
	size_t i;

	*line = 0;
	*col = 0;
	for (i = 0; i < off && i < y->len; i++) {
		if (y->data[i] == '\n') {
			(*line)++;
			*col = 0;
		} else
			(*col)++;
	}
}

static int
conf_yaml_syntax(struct conf_yaml *y, const yaml_parser_t *p)
{
	const char *problem = p->problem != NULL ? p->problem : "error";
	const char *context = p->context != NULL ? p->context : "";
	const char *hint = "check the indentation and quoting here";
	size_t line, col;

	if (p->error == YAML_MEMORY_ERROR)
		return -ENOMEM;
	if (p->error == YAML_READER_ERROR) {
		conf_yaml_offset(y, p->problem_offset, &line, &col);
		return conf_yaml_errorf(y, line, col, -EINVAL,
		    "not valid UTF-8 text (%s); save the file as UTF-8",
		    problem);
	}
	if (strstr(context, "alias") != NULL ||
	    strstr(context, "anchor") != NULL)
		hint = "a value that starts with '*' or '&' must be quoted, "
		    "e.g. schedule: \"*/30 * * * *\"";
	return conf_yaml_errorf(y, p->problem_mark.line, p->problem_mark.column,
	    -EINVAL, "YAML syntax error: %s%s%s; %s", problem,
	    context[0] != '\0' ? " " : "", context, hint);
}

static int
conf_yaml_run(struct conf_yaml *y, yaml_parser_t *p)
{
	yaml_event_t ev;
	bool done = false;
	int r = 0;

	while (!done && r == 0) {
		if (!yaml_parser_parse(p, &ev))
			return conf_yaml_syntax(y, p);
		r = conf_yaml_event(y, &ev);
		done = ev.type == YAML_STREAM_END_EVENT;
		if (ev.type == YAML_SCALAR_EVENT)
			explicit_bzero(ev.data.scalar.value,
			    ev.data.scalar.length);
		yaml_event_delete(&ev);
	}
	return r;
}

int
conf_yaml_parse(const char *file, const char *data, size_t len,
    struct conf_node **ret, struct conf_error *err)
{
	struct conf_yaml y;
	yaml_parser_t p;
	int r;

	memset(&y, 0, sizeof y);
	y.file = file;
	y.data = data;
	y.len = len;
	y.err = err;
	if (!yaml_parser_initialize(&p))
		return -ENOMEM;
	yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
	r = conf_yaml_run(&y, &p);
	yaml_parser_delete(&p);
	if (r == -ENOMEM)
		snprintf(err->text, sizeof err->text,
		    "%s: out of memory while reading it", file);
	if (r < 0) {
		conf_node_free(y.root);
		return r;
	}
	*ret = y.root;
	return 0;
}
