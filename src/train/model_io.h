/* Model files: a qkv checkpoint (train/checkpoint.h) reduced to what
 * translation needs (config, vocabularies, params); loading any
 * checkpoint's model; averaging several. Translation (decode/) uses this
 * header alone, not the trainer. */
#ifndef QKV_TRAIN_MODEL_IO_H
#define QKV_TRAIN_MODEL_IO_H

#include <stddef.h>

#include "qkv.h"
#include "train/checkpoint.h"

/* Vocabulary files stored in checkpoints: SentencePiece .model bytes. */
typedef struct {
    const void *src;
    size_t src_len;
    const void *tgt; /* NULL: shared with src */
    size_t tgt_len;
} qkv_vocab_blobs;

/* Loads the model (config + params) of any qkv checkpoint; vocab blobs point
 * into *file (keep it until done with them; NULL when absent). */
qkv_status qkv_checkpoint_load_model(const char *path, qkv_model **model, qkv_vocab_blobs *vocab,
                                     void **file_handle);
void qkv_checkpoint_release(void *file_handle);

/* Writes a model-only checkpoint (config, vocabularies, params). */
qkv_status qkv_checkpoint_save_model(const char *path, const qkv_model *m, const qkv_vocab_blobs *vocab);

/* Appends the vocabulary sections of vocab to sec[n..] and returns the new
 * count (at most 2 more). */
int ckpt_add_vocab_sections(ckpt_section *sec, int n, const qkv_vocab_blobs *vocab);

/* Averages the parameters of n checkpoints of the same configuration into
 * out_path (vocabularies and config from the first). */
qkv_status qkv_checkpoint_average(const char *const *paths, int n, const char *out_path);

#endif
