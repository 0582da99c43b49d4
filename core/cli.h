/*
 * core/cli.h - the admin CLI's commands (core/merpati.c dispatches).
 * Each returns the process exit status.
 */
#ifndef MERPATI_CLI_H
#define MERPATI_CLI_H

#include <stddef.h>
#include "buildconf.h"
#include "config.h"

#define CLI_DEFAULT_CONFIG MERPATI_SYSCONFDIR "/merpati/merpati.conf"

void cli_setup(const char *config, char **overrides, size_t n,
    int with_modules);
int cli_user(const char *config, char **overrides, size_t n, int argc,
    char **argv);
int cli_queue(const char *config, char **overrides, size_t n, int argc,
    char **argv);
int cli_mailbox(const char *config, char **overrides, size_t n, int argc,
    char **argv);
int cli_store(const char *config, char **overrides, size_t n, int argc,
    char **argv);
int cli_sendmail(const char *config, char **overrides, size_t n, int argc,
    char **argv);
int cli_trace(const char *config, char **overrides, size_t n, int argc,
    char **argv);
/* dkim keygen (core/cli_dkim.c, with the dkim module's engine linked) */
int cli_dkim(const char *config, char **overrides, size_t n, int argc,
    char **argv);
const char *mp_basename(const char *path);
/* Signal the running daemon via its pid file; 0, or -1 (message printed
 * unless quiet). */
int cli_signal_daemon(int sig, int quiet);

#endif
