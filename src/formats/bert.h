/* Hugging Face BERT-family encoder directories, as sentence-transformers
 * saves them:
 *
 *   config.json            BertModel: hidden_size, num_hidden_layers,
 *                          num_attention_heads, intermediate_size,
 *                          hidden_act "gelu" (exact), layer_norm_eps,
 *                          max_position_embeddings, type_vocab_size,
 *                          vocab_size, position_embedding_type "absolute"
 *   model.safetensors      through the strict reader; names as BertModel's
 *                          state dict, or with a "bert." prefix
 *   vocab.txt, tokenizer_config.json     text/wordpiece.h
 *   modules.json           optional: Transformer, Pooling, Normalize
 *   sentence_bert_config.json            optional: max_seq_length
 *   1_Pooling/config.json  optional (the Pooling module's path): the mode
 *
 * Without modules.json the directory is a plain BertModel: mean pooling,
 * no normalisation, as sentence-transformers treats one. */
#ifndef QKV_FORMATS_BERT_H
#define QKV_FORMATS_BERT_H

#include <stddef.h>

#include "qkv.h"
#include "text/wordpiece.h"

typedef struct {
    int vocab_size, hidden, layers, heads, intermediate, max_positions, type_vocab_size;
    float layer_norm_eps;
} bert_config;

/* Offsets (in floats) into the parameter buffer; keep in sync with the
 * tensor list in bert.c. */
typedef struct {
    size_t q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b, ln1_w, ln1_b, i_w, i_b, f_w, f_b, ln2_w, ln2_b;
} bert_layer_offsets;

typedef struct {
    bert_config cfg;
    float *params; /* one buffer */
    size_t n_params;
    size_t word, pos, type, ln_w, ln_b;
    bert_layer_offsets *layer; /* [layers] */
    qkv_wordpiece *tok;
    int max_seq_length; /* ids per sentence, [CLS] and [SEP] included */
    int pooling;        /* 1 mean, 2 cls, 3 max (kernels/pooling.h's pool_kind) */
    int normalize;      /* a Normalize module is listed */
} bert_model;

/* 1 when dir has a config.json whose model_type or architectures say BERT. */
int bert_is_dir(const char *dir);

/* Loads the directory. Errors name the file and field: QKV_ERR_UNSUPPORTED
 * for another architecture, activation, position embedding type or
 * sentence-transformers module; QKV_ERR_FORMAT / QKV_ERR_CONFIG for
 * malformed or inconsistent files (tensor shapes against config.json). */
qkv_status bert_load(const char *dir, bert_model **out);
void bert_free(bert_model *m);

#endif
