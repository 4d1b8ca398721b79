/* Masking a parallel corpus (cli/cmd_protect.c), shared with qkv train --protect. */
#ifndef QKV_CLI_PROTECT_ARGS_H
#define QKV_CLI_PROTECT_ARGS_H

/* Writes out_src/out_tgt: src/tgt with protected spans replaced by sentinels
 * (protect_mask_pair per line), counts on stderr. Returns the exit status
 * (1 after printing an error naming the file and line). */
int protect_mask_files(const char *src, const char *tgt, const char *out_src, const char *out_tgt);

#endif
