/* Dev-set BLEU and chrF for validation: translates (greedy) up to
 * max_sentences dev sources with the current model and scores them against
 * the dev references with sacreBLEU's rules (tokenizer zh when most
 * references hold CJK, else 13a). Its score function fits
 * qkv_train_hooks.score_dev (pass the scorer as score_ctx). */
#ifndef QKV_TRAIN_DEV_SCORE_H
#define QKV_TRAIN_DEV_SCORE_H

#include "data/parallel.h"
#include "qkv.h"

#define QKV_DEV_SCORE_MAX 500

typedef struct qkv_dev_scorer qkv_dev_scorer;

/* dev: the dev corpus as read for training (pair.line says which lines
 * were kept); tgt_path: its target file, read again for the reference
 * text; tv: the target vocabulary (decodes hypotheses). dev and tv must
 * outlive the scorer. Errors: QKV_ERR_IO naming tgt_path, QKV_ERR_NOMEM. */
qkv_status qkv_dev_scorer_new(qkv_dev_scorer **out, const qkv_parallel *dev, const char *tgt_path,
                              const qkv_vocab *tv, int max_sentences);
void qkv_dev_scorer_free(qkv_dev_scorer *d);

/* ctx: a qkv_dev_scorer. */
qkv_status qkv_dev_scorer_score(void *ctx, const qkv_model *m, double *bleu, double *chrf);

#endif
