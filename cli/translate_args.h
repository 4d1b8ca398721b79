/* Options shared by the commands that load a translation model (translate,
 * score, attn), defined in cli/cmd_translate.c. */
#ifndef QKV_CLI_TRANSLATE_ARGS_H
#define QKV_CLI_TRANSLATE_ARGS_H

#include "qkv.h"

/* Finds -m / --model. The model is loaded before the other options are read
 * so that its generation defaults are their starting point. Returns -1 with
 * *model set when the command goes on; otherwise the exit status: 0 after
 * printing usage for --help (anywhere), 1 after an error when -m is absent. */
int translate_model_arg(int argc, char **argv, const char *usage, const char **model);

/* Loads the model on a context of --threads N threads (default: $QKV_THREADS
 * or all cores), found anywhere in argv. Returns 0, or 1 after printing the
 * error. Free with translate_unload. */
int translate_load(const char *model, int argc, char **argv, qkv_translator **tr);
void translate_unload(qkv_translator *tr);

/* Parses the search option at argv[*i] into o (advancing *i past its value).
 * Returns 1 when it was one, 0 when it is not a search option, -1 after an
 * error was printed. *bad_ids owns the parsed --bad-word-ids. */
int translate_parse_option(qkv_translate_options *o, int argc, char **argv, int *i, int **bad_ids);

/* The protected-span counts of a run, one line on stderr. */
void translate_print_protect_stats(const qkv_protect_stats *p);

#endif
