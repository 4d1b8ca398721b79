/* Model files: a qkv checkpoint (train/checkpoint.h) reduced to what
 * translation needs (config, vocabularies, params); loading any
 * checkpoint's model; averaging several. Translation (decode/) uses this
 * header alone, not the trainer. */
#ifndef QKV_TRAIN_MODEL_IO_H
#define QKV_TRAIN_MODEL_IO_H

#include <stddef.h>

#include "qkv.h"
#include "model/model.h"
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
/* The same for a model nobody writes (a translator's): from a float32
 * checkpoint whose parameters lie on a page boundary (every file qkv
 * writes), the product weights stay pages of the file instead of copies,
 * so weights never read take no memory and model_release_params can drop
 * packed ones; the parameters are read-only. Older files, quantized ones
 * and unmappable ones are copied. */
qkv_status qkv_checkpoint_load_model_readonly(const char *path, qkv_model **model, qkv_vocab_blobs *vocab,
                                              void **file_handle);
void qkv_checkpoint_release(void *file_handle);

/* Writes a model-only checkpoint (config, vocabularies, params). */
qkv_status qkv_checkpoint_save_model(const char *path, const qkv_model *m, const qkv_vocab_blobs *vocab);

/* A checkpoint whose decoder product weights are stored in compute_type
 * ("int8" or "bfloat16"; train/model_quant.c draws the sections). */
qkv_status qkv_checkpoint_save_quantized(const char *path, const qkv_model *m, const qkv_vocab_blobs *vocab,
                                         const char *compute_type);
/* Reads the qkv checkpoint in_path and writes it quantized to out_path
 * (compute_type int8, int8_float32, int8_bfloat16: int8; bfloat16). */
qkv_status qkv_checkpoint_quantize(const char *in_path, const char *out_path, const char *compute_type);
/* "float32", or the type of a quantized checkpoint (file_handle from
 * qkv_checkpoint_load_model). */
const char *qkv_checkpoint_compute_type(const void *file_handle);
/* For an int8 checkpoint, the stored int8 tensors for
 * model_decoder_weights_new_i8 (q points into the file: keep it; the
 * scales are copied into *scales); *out NULL for other checkpoints. Free
 * *out and *scales. */
qkv_status qkv_checkpoint_i8_tensors(const void *file_handle, const qkv_model *m, model_i8_tensor **out,
                                     float **scales);
/* Internal to the loader: fills m's parameters from a quantized file. */
qkv_status model_io_fill_quantized(const char *path, const ckpt_file *f, qkv_model *m);

/* Appends the vocabulary sections of vocab to sec[n..] and returns the new
 * count (at most 2 more). */
int ckpt_add_vocab_sections(ckpt_section *sec, int n, const qkv_vocab_blobs *vocab);

/* Averages the parameters of n checkpoints of the same configuration into
 * out_path (vocabularies and config from the first). */
qkv_status qkv_checkpoint_average(const char *const *paths, int n, const char *out_path);

#endif
