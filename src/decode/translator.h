/* The translator behind qkv_translator (include/qkv.h): a model, the text
 * side (SentencePiece vocabularies of a qkv checkpoint) and the model's own
 * generation defaults. Internal to src/decode/. */
#ifndef QKV_DECODE_TRANSLATOR_H
#define QKV_DECODE_TRANSLATOR_H

#include "decode/search.h"
#include "qkv.h"

#include "text/tokenizer.h"

/* What a model directory asks of generate() when the caller does not. */
typedef struct {
    int num_beams;   /* qkv checkpoints: 4 */
    int max_length;  /* counts the decoder start token; qkv: max_positions + 1 */
    float max_length_ratio; /* qkv: 2 (with offset 10: 2 * source + 10 tokens); Marian: 0 (off) */
    int max_length_offset;
    int forced_eos;  /* qkv: 1 */
    int min_length, no_repeat_ngram_size;
    float length_penalty, repetition_penalty;
    qkv_early_stopping early_stopping;
    int *bad_words;  /* -1-separated sequences (Marian bad_words_ids), owned */
    int n_bad_words;
} translator_defaults;

/* The decoder weights packed once per compute type and a pool of search states
 * (translator_pool.c); shared by the calls of all threads. */
typedef struct translator_pool translator_pool;
qkv_status translator_pool_new(translator_pool **out);
void translator_pool_free(translator_pool *p);
/* A search state for one call (free, or new), with the translator's
 * weights packed in compute type wtype (a qlinear_type); thread-safe. Give
 * it back, with the same type, when the call is done. */
qkv_status translator_state_take(const qkv_translator *t, int wtype, search_state **out);
void translator_state_give(const qkv_translator *t, int wtype, search_state *s);
/* The translator's decoder weights in compute type wtype, packed on first
 * use and kept until the translator is freed; thread-safe. */
/* Installs packed weights of type wtype (taking ownership), before any call. */
void translator_pool_set_weights(translator_pool *p, int wtype, model_decoder_weights *w);
qkv_status translator_weights(const qkv_translator *t, int wtype, const model_decoder_weights **out);

struct qkv_translator {
    qkv_model *model;
    void *file;                       /* qkv checkpoint bytes while loading (released once loaded) */
    int own_type;                     /* qlinear_type of the weights as stored: the "default" compute type */
    qkv_vocab *src_vocab, *tgt_vocab; /* qkv checkpoints; tgt_vocab == src_vocab when shared */
    qkv_tokenizer *tok;               /* Marian directories */
    translator_defaults defaults;
    qkv_context *ctx;     /* what its calls run on (borrowed or own_ctx) */
    qkv_context *own_ctx; /* made by qkv_translator_load, freed with it */
    translator_pool *pool;            /* the only part calls change (behind its mutex) */
};

/* Options + model defaults -> search_params. The prompt and bad-word lists
 * live in *owned (free it after the search). */
qkv_status translator_resolve(const qkv_translator *t, const qkv_translate_options *o, const int *prefix,
                              int prefix_len, search_params *p, int **owned);

/* Text side. Source: ids of text with EOS appended, cut to max_positions
 * (EOS kept; *truncated = number of tokens dropped); whitespace-only text
 * gives n = 0. Target: ids without EOS. */
qkv_status translator_encode_source(const qkv_translator *t, const char *text, int **ids, int *n, int *truncated);
qkv_status translator_encode_target(const qkv_translator *t, const char *text, int **ids, int *n);
qkv_status translator_decode_target(const qkv_translator *t, const int *ids, int n, char **text);
/* A piece for display (malloc'ed): source side if src, else target. */
char *translator_piece(const qkv_translator *t, int src, int id);

#endif
