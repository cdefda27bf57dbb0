/*
 * mailstow.h - what the files of the command-line tool share: its
 * options, exit codes and the commands that live outside mailstow.c.
 */
#ifndef MAILSTOW_CLI_H
#define MAILSTOW_CLI_H

#include <stdbool.h>

#include "conf/conf.h"

#define EXIT_RUN_FAILED	1
#define EXIT_USAGE	2

struct cli {
	const char *config;
	bool	 json;
	const char *profile;		/* --profile, --last */
	const char *folder;		/* --folder */
	struct conf *conf;
};

/* mailstow_oauth2.c: `mailstow oauth2 login PROFILE | status` */
int	cmd_oauth2(struct cli *, int argc, char **argv);

#endif
