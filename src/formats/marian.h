/* Hugging Face Marian (OPUS-MT) directories, as transformers'
 * MarianMTModel.save_pretrained writes them:
 *
 *   DIR/config.json             MarianConfig (model shape, special ids and,
 *                               in older files, generation defaults)
 *   DIR/generation_config.json  generation defaults (optional)
 *   DIR/model.safetensors       F32 / F16 / BF16 weights
 *   DIR/source.spm, target.spm  SentencePiece models
 *   DIR/vocab.json              piece -> model id (target_vocab.json too
 *                               with separate vocabularies)
 *   DIR/tokenizer_config.json   MarianTokenizer options (optional)
 *
 * The rules follow transformers 4.39 (models/marian/configuration_marian.py,
 * modeling_marian.py, tokenization_marian.py, generation/utils.py): a field
 * missing from config.json takes MarianConfig's default, as it does there.
 * Keep marian.c's field table, this comment and tests/test_marian.c in sync. */
#ifndef QKV_FORMATS_MARIAN_H
#define QKV_FORMATS_MARIAN_H

#include "qkv.h"
#include "text/tokenizer.h"

/* The generation defaults of a Marian directory, as generate() would use
 * them without arguments. Ids are -1 when absent. */
typedef struct {
    int max_length;            /* 20: total length, decoder start included */
    int min_length;            /* 0 */
    int num_beams;             /* 1 */
    int num_return_sequences;  /* 1 */
    float length_penalty;      /* 1.0: score / length^length_penalty (beams) */
    float repetition_penalty;  /* 1.0 */
    int early_stopping;        /* 0 (false), 1 (true) or 2 ("never") */
    int no_repeat_ngram_size;  /* 0 */
    int forced_bos_token_id;   /* -1 */
    int forced_eos_token_id;   /* MarianConfig's default: 0 */
    int pad_token_id, eos_token_id, decoder_start_token_id, bos_token_id;
    /* bad_words_ids: n_bad_words sequences, the i-th of bad_words_len[i]
     * ids, concatenated in bad_words_ids (pad alone in OPUS-MT: never
     * generated). */
    int n_bad_words;
    int *bad_words_len;
    int *bad_words_ids;
} marian_generation;

void marian_generation_free(marian_generation *g); /* frees the arrays; NULL ok */

/* Reads DIR/config.json (and DIR/generation_config.json, which replaces
 * config.json's generation fields when present, as from_pretrained does)
 * into a qkv config and generation defaults. cfg or gen may be NULL.
 * Errors (QKV_ERR_CONFIG, QKV_ERR_UNSUPPORTED for valid settings qkv does not
 * run, e.g. activation "gelu_new") name the file and the field. */
qkv_status marian_read_config(const char *dir, qkv_model_config *cfg, marian_generation *gen);

/* Loads a whole directory. Each of model, tok, gen may be NULL to skip that
 * part. gen is what generate() uses: as marian_read_config, except that a
 * generation_config.json saying "_from_model_config": true is set aside
 * for config.json's fields (generate()'s legacy rule, see marian.c). The weights come from DIR/model.safetensors: every tensor the
 * config implies must be there with its shape (an error names the tensor
 * and both shapes), and a tensor the config does not account for is an
 * error too (tied aliases such as model.encoder.embed_tokens.weight beside
 * model.shared.weight, and lm_head.weight with tied output embeddings, are
 * accepted and ignored). Marian's static sinusoidal positions need not be
 * in the file; when they are and differ from the sinusoidal table, the
 * model takes them as learned positions, as transformers would use them.
 * A directory holding only pytorch_model.bin (or TF / Flax weights) is
 * refused: pickle checkpoints are not read. On failure nothing is returned
 * (every out pointer NULL, gen zeroed). */
qkv_status marian_load(const char *dir, qkv_model **model, qkv_tokenizer **tok, marian_generation *gen);

/* Writes m and tok as a Marian directory DIR (created if absent): config.json,
 * generation_config.json (gen's values, or max_length min(512, positions),
 * 4 beams and pad as the only bad word when gen is NULL), model.safetensors
 * (F32), source.spm, target.spm, vocab.json (and target_vocab.json with
 * separate vocabularies), tokenizer_config.json. Files are written
 * atomically, one by one. QKV_ERR_UNSUPPORTED for models MarianMTModel cannot
 * run: pre-norm, final layer norms, eps other than 1e-5, tied output
 * embeddings with two vocabulary sizes, untied embeddings with a target
 * vocabulary larger than the source one. In spm-id mode the special tokens
 * are the pieces at the model's eos and pad ids and the source spm's unk. */
qkv_status marian_export(qkv_model *m, const qkv_tokenizer *tok, const marian_generation *gen, const char *dir);

#endif
