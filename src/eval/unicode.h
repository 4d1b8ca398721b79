/* Unicode facts needed to reproduce sacreBLEU (which runs on Python's str and
 * the `regex` module): UTF-8 decoding, whitespace as str.split() sees it,
 * str.lower(), and the punctuation/symbol/number classes of the intl
 * tokenizer. Tables are generated (src/eval/gen_unicode_tables.py). */
#ifndef QKV_EVAL_UNICODE_H
#define QKV_EVAL_UNICODE_H

#include <stddef.h>
#include <stdint.h>

#include "qkv.h"

typedef struct {
    uint32_t first, last;
} eval_uc_range;

typedef struct {
    uint32_t first, last;
    int32_t stride, delta;
} eval_uc_lower_run;

typedef struct {
    uint32_t cp;
    uint32_t lower[3]; /* 0-terminated when shorter */
} eval_uc_lower_multi;

/* keep in sync with gen_unicode_tables.py */
extern const eval_uc_range eval_uc_punct[], eval_uc_symbol[], eval_uc_number[], eval_uc_space[],
    eval_uc_sigma_cased[], eval_uc_sigma_ign[];
extern const int eval_uc_punct_count, eval_uc_symbol_count, eval_uc_number_count, eval_uc_space_count,
    eval_uc_sigma_cased_count, eval_uc_sigma_ign_count;
extern const eval_uc_lower_run eval_uc_lower[];
extern const int eval_uc_lower_count;
extern const eval_uc_lower_multi eval_uc_lower_special[];
extern const int eval_uc_lower_special_count;

/* A growable array of code points. */
typedef struct {
    uint32_t *cp;
    size_t n, cap;
} eval_u32buf;

qkv_status eval_u32_push(eval_u32buf *b, uint32_t c);
void eval_u32_free(eval_u32buf *b);

/* Decodes UTF-8 (strict, as Python's 'utf-8' codec: no surrogates, no
 * overlongs) into out (appended). what names the text in error messages. */
qkv_status eval_utf8_decode(eval_u32buf *out, const char *s, const char *what);

/* Encodes n code points as a malloc'ed NUL-terminated UTF-8 string. */
qkv_status eval_utf8_encode(char **out, const uint32_t *cp, size_t n);

int eval_uc_in(const eval_uc_range *t, int count, uint32_t c);
int eval_uc_is_space(uint32_t c);

/* Python's str.lower() over the whole string (including Final_Sigma). */
qkv_status eval_lower(eval_u32buf *out, const uint32_t *cp, size_t n);

#endif
