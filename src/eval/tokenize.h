/* sacreBLEU's text preprocessing on code points, shared by BLEU and chrF. */
#ifndef QKV_EVAL_TOKENIZE_H
#define QKV_EVAL_TOKENIZE_H

#include "eval/unicode.h"

/* BLEU's _preprocess_segment: lower (optional), rstrip, tokenizer. The
 * result (replacing out's content) is the tokenized line as code points. */
qkv_status eval_bleu_preprocess(eval_u32buf *out, const char *line, qkv_bleu_tokenizer tok, int lowercase,
                                const char *what);

/* A word: a run of code points between whitespace (Python's str.split()). */
typedef struct {
    size_t start, len;
} eval_span;

typedef struct {
    eval_span *w;
    size_t n, cap;
} eval_spans;

/* Replaces sp's content with the words of cp[0..n). */
qkv_status eval_split(eval_spans *sp, const uint32_t *cp, size_t n);
void eval_spans_free(eval_spans *sp);

#endif
