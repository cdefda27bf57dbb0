/*
 * log.c - formats a line and hands it to the installed sink.
 * Lines are formatted into a bounded stack buffer: a log call never
 * allocates, so it is safe on error paths where memory is short.
 */
#include <stdio.h>

#include "log.h"

static log_sink_fn *log_sink;
static void *log_sink_arg;
static enum log_level log_level = LOG_LVL_INFO;

void
log_set_sink(log_sink_fn *fn, void *arg)
{
	log_sink = fn;
	log_sink_arg = arg;
}

void
log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level
log_get_level(void)
{
	return log_level;
}

void
log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char line[2048];

	if (level > log_level)
		return;
	vsnprintf(line, sizeof line, fmt, ap);
	if (log_sink != NULL)
		log_sink(level, line, log_sink_arg);
	else
		fprintf(stderr, "%s\n", line);
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}
