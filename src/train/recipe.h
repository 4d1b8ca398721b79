/* What a training job decides before the loop starts, shared by `qkv train`
 * and any other driver (a distributed one, a test): the presets (model shape
 * and recipe), the vocabulary-id policy (special ids and vocabulary sizes
 * from the SentencePiece models) and the output directory. */
#ifndef QKV_TRAIN_RECIPE_H
#define QKV_TRAIN_RECIPE_H

#include "qkv.h"

/* A preset: model shape and training recipe.
 * small: the reference recipe our PyTorch comparison trains (see README). */
typedef struct {
    const char *name;
    int d_model, heads, d_ff, layers;
    int pre_norm;
    int vocab_size;   /* pieces of vocabularies trained for the run */
    double lr;        /* peak; 0: the paper's d_model^-0.5 * warmup^-0.5 */
    int warmup;
    int batch_tokens;
    float dropout;
} qkv_train_preset;

/* The preset called name (tiny, small, base, demo), or NULL. */
const qkv_train_preset *qkv_train_find_preset(const char *name);

/* The model configuration of a preset (vocabulary fields left at their
 * defaults: see qkv_train_apply_vocab_ids). */
qkv_model_config qkv_train_preset_config(const qkv_train_preset *p);

/* Special ids and sizes a model trained on these vocabularies gets. */
typedef struct {
    int src_vocab_size, tgt_vocab_size;
    int pad_id, eos_id, bos_id; /* bos_id: pad when the target vocabulary has no <s> */
    int src_eos_id;
    int shared; /* one vocabulary on both sides */
} qkv_train_vocab_ids;

/* The policy: special ids come from the target vocabulary; a target
 * vocabulary without <pad> gets one more id for it, as Marian does, past both
 * vocabularies (the pad rows are frozen: no real piece may share the id).
 * tv may equal sv (shared). Errors: QKV_ERR_FORMAT naming src_path or
 * tgt_path when a vocabulary has no </s>. */
qkv_status qkv_train_vocab_policy(const qkv_vocab *sv, const qkv_vocab *tv, const char *src_path,
                                  const char *tgt_path, qkv_train_vocab_ids *out);

/* Writes the ids into cfg. The decoder starts from pad (Marian's
 * convention: the pad rows stay zero, so the first input is the position
 * encoding alone, as CTranslate2's Marian models expect). */
void qkv_train_apply_vocab_ids(qkv_model_config *cfg, const qkv_train_vocab_ids *ids);

/* mkdir -p: creates dir and its missing parents. QKV_ERR_IO naming dir and
 * the reason when it cannot, or when dir exists and is not a directory. */
qkv_status qkv_make_dirs(const char *dir);

#endif
