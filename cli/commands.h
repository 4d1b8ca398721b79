/* Subcommands of the qkv program: each lives in its own cli/cmd_*.c and is
 * listed once in the table in cli/qkv.c. A command returns the process exit
 * status; errors go to stderr as "qkv: error: ...". */
#ifndef QKV_CLI_COMMANDS_H
#define QKV_CLI_COMMANDS_H

typedef int (*qkv_command_fn)(int argc, char **argv);

/* Prints "qkv: error: <formatted message>\n" to stderr and returns 1. */
int cli_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

#endif
