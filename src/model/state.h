/* The training / scoring state of model.c: the workspace of activations
 * and scratch that one forward and backward use, carved once (state.c),
 * and the last batch. Private to src/model: model.h keeps model_state
 * opaque. */
#ifndef QKV_MODEL_STATE_H
#define QKV_MODEL_STATE_H

#include "base/arena.h"
#include "model/layers.h"
#include "model/model.h"

/* A block's kept activations; see model.c for what each holds in post- and
 * pre-norm. */
typedef struct {
    float *ln, *mean, *rstd, *res;
} block_acts;

/* blocks: [0] self-attention, [1] cross-attention (decoder), [2] feed-forward */
typedef struct {
    block_acts blk[3];
    attn_acts self, cross;
    ffn_acts ffn;
} layer_acts;

struct model_state {
    const qkv_model *m;
    int max_B, max_S, max_T, with_grads;
    int shared_layers; /* model_state_new_forward: every layer of a stack uses layer 0's buffers */
    size_t max_src_cells, max_tgt_cells; /* B * S and B * T of any batch */
    float *grads;
    void (*grads_ready)(void *ctx, size_t begin, size_t end); /* see model_set_grads_ready */
    void *grads_ready_ctx;
    qkv_arena ws; /* every activation and scratch buffer, carved once */
    layer_acts *enc, *dec;
    /* stacks: embedding outputs, final norms, outputs */
    float *enc_x0, *enc_fin, *enc_fmean, *enc_frstd;
    float *dec_x0, *dec_fin, *dec_fmean, *dec_frstd;
    const float *enc_out, *dec_out;
    /* logits [B*T, V]: every position (after a forward with labels, made
     * when model_logits asks); probs, row_loss, dloss, out_x (the output
     * projection's input [n_lab, C]): the labelled rows only (rows.h) */
    float *logits, *probs, *row_loss, *dloss, *out_x;
    int logits_ready, n_lab;
    int *lab_rows, *lab_ids, *lab_where; /* rows.h's label_rows */
    /* forward scratch */
    float *proj_tmp, *h, *mask;
    /* backward scratch */
    float *d_a, *d_b, *d_enc, *d_tmp, *d_h;
    float *pad_rows; /* [2, C]: see model_backward */
    sublayer_scratch sw;
    /* the last batch (copied: backward must not depend on the caller's arrays) */
    int B, S, T, encoded, decoded, have_labels;
    int *src, *src_len, *tgt, *tgt_len, *labels;
    model_forward_options opt;
    double count; /* label positions that count in the loss */
    void *qscratch; /* typed encoder products' scratch (model_encode_typed), made on first use */
    size_t qscratch_bytes;
};

#endif
