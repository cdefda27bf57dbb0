/*
 * log.h - the logging facade of libmailstow.
 *
 * Library code logs at debug level only and returns errors; programs install
 * a sink (stderr, journald) once at start.  The sink and level are the one
 * piece of process-wide state in lib/: set them before the loop starts.
 */
#ifndef MAILSTOW_BASE_LOG_H
#define MAILSTOW_BASE_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LVL_ERR,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

/* Receives one formatted line without a trailing newline. */
typedef void log_sink_fn(enum log_level level, const char *line, void *arg);

/* Install the sink (NULL: lines go to stderr).  Not thread-safe. */
void	log_set_sink(log_sink_fn *fn, void *arg);
/* Lines above `level` are dropped before formatting. */
void	log_set_level(enum log_level level);
enum log_level log_get_level(void);

void	log_msg(enum log_level, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	log_vmsg(enum log_level, const char *fmt, va_list ap)
	    __attribute__((format(printf, 2, 0)));

#define log_debug(...)	log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_err(...)	log_msg(LOG_LVL_ERR, __VA_ARGS__)

#endif
