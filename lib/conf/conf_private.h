/*
 * conf_private.h - what the files of lib/conf share: the bounded YAML tree
 * that conf_yaml.c builds from libyaml events, the error context, and the
 * typed getters that turn tree nodes into config values with
 * FILE:LINE:COL: KEY.PATH errors.
 */
#ifndef MAILSTOW_CONF_PRIVATE_H
#define MAILSTOW_CONF_PRIVATE_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"

/* Limits on what a config file may make us hold in memory. */
#define CONF_MAX_FILE_SIZE	(4u << 20)	/* bytes per file */
#define CONF_MAX_PROFILES	10000		/* over main file + conf.d */
#define CONF_MAX_DEPTH		32		/* nested mappings and lists */
#define CONF_MAX_STRING		4096		/* bytes per scalar */
#define CONF_MAX_NODES		1000000		/* nodes per file */
#define CONF_MAX_PATTERNS	1000		/* folder patterns per list */
#define CONF_MAX_CONFD		10000		/* files in conf.d */
#define CONF_MAX_PATH		512		/* key path in a message */
#define CONF_PASSWORD_MAX	4096		/* bytes in a password file */

enum conf_node_type {
	CONF_NODE_SCALAR,
	CONF_NODE_SEQ,
	CONF_NODE_MAP,
};

struct conf_node;

struct conf_pair {
	struct conf_node *key;		/* always a scalar */
	struct conf_node *value;	/* NULL while the parser waits for it */
};

struct conf_node {
	enum conf_node_type type;
	unsigned	 line;		/* 1-based, from the libyaml mark */
	unsigned	 col;
	bool		 plain;		/* scalar written without quotes */
	char		*str;		/* scalar text, NUL-terminated */
	size_t		 len;		/* may be < strlen() if it holds NUL */
	struct conf_node **items;	/* sequence */
	struct conf_pair *pairs;	/* mapping */
	size_t		 n;		/* items or pairs in use */
	size_t		 cap;
};

/* Where an error is reported: the file being validated and its mode. */
struct conf_ctx {
	const char	*file;
	mode_t		 mode;		/* st_mode, for the inline password */
	struct conf_error *err;
};

/* conf_yaml.c */
int	conf_read_file(const char *path, char **ret_data, size_t *ret_len,
	    mode_t *ret_mode, struct conf_error *err);
/* The same with its own size limit; ret_mode may be NULL. */
int	conf_read_file_max(const char *path, size_t max, char **ret_data,
	    size_t *ret_len, mode_t *ret_mode, struct conf_error *err);
int	conf_yaml_parse(const char *file, const char *data, size_t len,
	    struct conf_node **ret, struct conf_error *err);
void	conf_node_free(struct conf_node *);
void	conf_data_free(char *data, size_t len);

/* conf_validate.c */
int	conf_errorf(struct conf_ctx *, const struct conf_node *at,
	    const char *path, int code, const char *fmt, ...)
	    __attribute__((format(printf, 5, 6)));
void	conf_path(char *buf, size_t len, const char *parent, const char *key);
void	conf_path_index(char *buf, size_t len, const char *parent, size_t i);
void	conf_show(const struct conf_node *, char *buf, size_t len);
bool	conf_node_is_null(const struct conf_node *);
const char *conf_node_kind(const struct conf_node *);
const char *conf_suggest(const char *key, const char *const known[]);
int	conf_expect_map(struct conf_ctx *, const struct conf_node *,
	    const char *path, const char *hint, const struct conf_node **ret);
int	conf_check_keys(struct conf_ctx *, const struct conf_node *map,
	    const char *path, const char *const known[]);
const struct conf_node *conf_map_get(const struct conf_node *map,
	    const char *key);
int	conf_require(struct conf_ctx *, const struct conf_node *map,
	    const struct conf_node *at, const char *path, const char *key,
	    const struct conf_node **ret);
int	conf_get_str(struct conf_ctx *, const struct conf_node *,
	    const char *path, char **ret);
int	conf_get_abs_path(struct conf_ctx *, const struct conf_node *,
	    const char *path, char **ret);
int	conf_get_bool(struct conf_ctx *, const struct conf_node *,
	    const char *path, bool *ret);
int	conf_get_u32(struct conf_ctx *, const struct conf_node *,
	    const char *path, uint32_t min, uint32_t max, uint32_t *ret);
int	conf_get_duration_ms(struct conf_ctx *, const struct conf_node *,
	    const char *path, uint64_t min, uint64_t max, uint32_t *ret);
int	conf_get_size(struct conf_ctx *, const struct conf_node *,
	    const char *path, uint64_t *ret);
int	conf_get_str_list(struct conf_ctx *, const struct conf_node *,
	    const char *path, char ***ret, size_t *ret_n);
void	conf_str_list_free(char **list, size_t n);

/* conf_batch.c */
int	conf_parse_batch(struct conf_ctx *, const struct conf_node *m,
	    const char *path, struct conf_profile *p);
void	conf_multidrop_clear(struct conf_multidrop *);

/* conf_oauth2.c: auth.oauth2 and auth.mechanism of the auth map. */
int	conf_parse_oauth2(struct conf_ctx *, const struct conf_node *auth,
	    const char *path, struct conf_auth *);
int	conf_check_oauth2(struct conf_ctx *, const struct conf_node *auth,
	    const char *path, const struct conf_profile *);
void	conf_oauth2_clear(struct conf_oauth2 *);

/* conf_profile.c */
int	conf_parse_profiles(struct conf_ctx *, const struct conf_node *seq,
	    struct conf *c);
void	conf_profile_clear(struct conf_profile *);

/* conf_server.c */
int	conf_parse_server(struct conf_ctx *, const struct conf_node *node,
	    const char *path, struct conf_server *srv);
void	conf_server_clear(struct conf_server *);

#endif
