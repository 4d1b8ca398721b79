/* Helpers shared by the commands that embed text (embed, similarity,
 * search, classify), defined in cli/cmd_embed.c. */
#ifndef QKV_CLI_EMBED_ARGS_H
#define QKV_CLI_EMBED_ARGS_H

#include <stdio.h>

#include "qkv.h"

/* Every line of fp ('\n' removed, and a '\r' before it), malloc'ed;
 * returns 0 after printing an error. */
typedef struct {
    char **lines;
    int n;
} cli_lines;
int cli_read_lines(FILE *fp, const char *name, cli_lines *out);
int cli_read_lines_path(const char *path, cli_lines *out); /* "-" is stdin */
void cli_lines_free(cli_lines *l);

/* Parses an embedding option at argv[*i] (--pooling, --normalize,
 * --no-normalize, --batch-size, --threads, --max-length) into o. Returns 1
 * when it was one, 0 when not, -1 after an error was printed. */
int cli_embed_option(qkv_embed_options *o, int argc, char **argv, int *i);

/* Embeds lines with e; prints the counts of empty, truncated lines and
 * invalid bytes to stderr as "qkv COMMAND: ...". Returns a malloc'ed
 * [n, dim] or NULL after printing an error. */
float *cli_embed_lines(const qkv_embedder *e, const cli_lines *l, const qkv_embed_options *o, const char *command);

#endif
