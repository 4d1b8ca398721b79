/* The BERT encoder's forward pass (BertModel, inference): post-norm layers
 * with learned positions, token-type embeddings (all type 0, as for one
 * sentence), exact GELU and the padding mask. No numerical loop of its own:
 * every step is a kernel. */
#ifndef QKV_EMBED_BERT_ENCODER_H
#define QKV_EMBED_BERT_ENCODER_H

#include "formats/bert.h"

typedef struct bert_workspace bert_workspace;

/* Buffers for batches of up to max_B sentences of max_T tokens. */
qkv_status bert_workspace_new(const bert_model *m, int max_B, int max_T, bert_workspace **out);
void bert_workspace_free(bert_workspace *w);

/* hidden: [B, T, hidden] last_hidden_state (rows past len[b] are computed
 * but mean nothing)   ids: [B, T] (padding rows may hold any valid id)
 * len: [B], 1..T. The returned pointer lives in the workspace. QKV_ERR_ARG
 * for ids outside the vocabulary or T past max_position_embeddings. */
qkv_status bert_forward(const bert_model *m, bert_workspace *w, const int *ids, const int *len, int B, int T,
                        const float **hidden);

#endif
