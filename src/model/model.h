/* The Transformer encoder-decoder, internal interface (train/ and decode/
 * use it; the public part is the model section of include/qkv.h).
 *
 * Two objects, as in whisper.cpp:
 *   - qkv_model: config + one parameter buffer with named views; never
 *     modified by forward or backward, so several threads may share it;
 *   - model_state: everything a call mutates: the activation workspace
 *     (sized once for the largest batch shape), the gradient buffer (same
 *     offsets as the parameters) and the last batch's shapes.
 *
 * Batches are padded rectangles: src [B, S] with src_len [B], tgt_in [B, T]
 * (decoder input, starting with decoder_start_id) with tgt_len [B], labels
 * [B, T] (pad_id where ignored). Positions >= length are padding: no valid
 * output depends on them (encoder and cross attention mask padded keys, the
 * decoder self-attention is causal). The pad_id row of a token table gets
 * no gradient from lookups (PyTorch's padding_idx, as in Marian). */
#ifndef QKV_MODEL_MODEL_H
#define QKV_MODEL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/qlinear.h"
#include "qkv.h"

/* ---- parameter layout (params.c) ------------------------------------------ */

/* Offsets (in floats) into the parameter buffer; the gradient buffer uses the
 * same ones. NO_PARAM marks an absent tensor. */
#define NO_PARAM ((size_t)-1)

typedef struct {
    size_t w, b;
} ln_offsets;

/* q, k, v weights are consecutive ([3C, C] from qkv_w) and so are their
 * biases ([3C] from qkv_b): self-attention projects with one GEMM, cross
 * attention projects k and v of the encoder output with one GEMM from
 * qkv_w + C*C. */
typedef struct {
    size_t qkv_w, qkv_b, out_w, out_b;
} attn_offsets;

typedef struct {
    ln_offsets ln[3];   /* self_attn_layer_norm, encoder_attn_layer_norm (decoder), final_layer_norm */
    attn_offsets self;  /* self_attn */
    attn_offsets cross; /* encoder_attn (decoder only) */
    size_t fc1_w, fc1_b, fc2_w, fc2_b;
    size_t begin, end;  /* the layer's parameters are [begin, end) of the buffer */
} layer_offsets;

struct qkv_model {
    qkv_model_config cfg;
    float *params;
    size_t num_params;
    void *map;      /* non-NULL: params lie in this read-only mapping (model_adopt_mapping) */
    size_t map_len;
    qkv_tensor_info *tensors; /* names point into names_buf */
    int num_tensors;
    char *names_buf;
    size_t enc_embed, dec_embed; /* equal when tied */
    size_t enc_pos, dec_pos;     /* learned positions, else NO_PARAM */
    size_t out_w;                /* = dec_embed when tied */
    size_t out_b;                /* final_logits_bias or NO_PARAM */
    ln_offsets enc_final, dec_final; /* NO_PARAM unless final_norm */
    layer_offsets *enc_layers, *dec_layers;
    float *sin_table; /* [max_positions, d_model] for sinusoidal positions, else NULL */
};

/* qkv_model_new without initialised parameters: for a loader that fills
 * them all (UNINIT: allocated, untouched until then) or adopts a mapping
 * (NONE); INIT is qkv_model_new's. */
typedef enum { MODEL_PARAMS_INIT, MODEL_PARAMS_UNINIT, MODEL_PARAMS_NONE } model_params_alloc;
qkv_status model_new_for_load(const qkv_model_config *c, model_params_alloc how, qkv_model **out);
/* The model takes a read-only mapping [map, map + len) that holds its
 * parameters at params (train/model_io.c's map_params: product weights as
 * file pages, the rest copied) and unmaps it when freed. Writing the
 * parameters of such a model faults: only translators, which never do,
 * load so. */
void model_adopt_mapping(qkv_model *m, void *map, size_t len, const float *params);
/* Releases the pages of product weight rows [off, off + n) (in one of
 * model_decoder_product_tensors) of a mapped model from memory: they are
 * file pages and come back from the file when read again; called once a
 * packed copy is made. No-op for a model whose parameters are its own. */
void model_release_params(const qkv_model *m, size_t off, size_t n);

/* Zeroes the pad_id row of each token-embedding table (encoder and decoder;
 * once when they are one) in `buf`, a buffer laid out as the parameters:
 * the parameters themselves at initialisation, the gradients before each
 * optimizer step. The row starts at zero as with PyTorch's padding_idx and
 * stays there through training, so a decoder that starts from pad (Marian's
 * convention, decoder_start_id = pad_id) starts from a zero vector, as in
 * Marian and CTranslate2's Marian models. An output projection tied to the
 * decoder table is that table: its pad row (the logit of a token never
 * generated) stays zero too. */
void model_zero_pad_rows(const qkv_model *m, float *buf);

/* ---- forward and backward (model.c) --------------------------------------- */

typedef struct {
    int B, S, T;
    const int *src;     /* [B, S] */
    const int *src_len; /* [B], each in [0, S] */
    const int *tgt_in;  /* [B, T] */
    const int *tgt_len; /* [B], each in [0, T] */
    const int *labels;  /* [B, T], pad_id at ignored positions (and at every t >= tgt_len); NULL: no loss */
} model_batch;

typedef struct {
    float label_smoothing; /* eps of F.cross_entropy */
    int dropout;           /* apply the config's dropout rates (training) */
    uint64_t seed;         /* dropout masks; use a new one per call */
    float loss_scale;      /* 1: backward differentiates loss_scale * loss (gradient accumulation
                              weights each micro-batch by its share of the update's tokens) */
} model_forward_options;

model_forward_options model_default_forward_options(void);

typedef struct model_state model_state;

/* A state for batches up to [max_B, max_S] x [max_B, max_T]; with_grads
 * adds the gradient buffer and the backward workspace. */
qkv_status model_state_new(const qkv_model *m, int max_B, int max_S, int max_T, int with_grads,
                           model_state **out);
/* The same, with buffers sized by cells: no batch has more than
 * max_src_cells = B * S or max_tgt_cells = B * T (token-bucketed batches
 * are many short rows or a few long ones, never many long ones). */
typedef struct {
    int max_B, max_S, max_T;
    int64_t max_src_cells, max_tgt_cells;
} model_state_limits;
qkv_status model_state_new_limits(const qkv_model *m, const model_state_limits *lim, int with_grads,
                                  model_state **out);
/* A state for forwards whose per-layer activations nobody reads afterwards
 * (translation's encoder, forced decoding in a compute type, embeddings):
 * every layer of a stack works in one layer's buffers, so the workspace
 * holds one layer per stack instead of all (a third of it for 3 + 3
 * layers). Outputs, logits and losses are those of model_state_new;
 * model_attention and model_attention_qkv give nothing (NULL, QKV_ERR_ARG)
 * and model_backward fails. */
qkv_status model_state_new_forward(const qkv_model *m, int max_B, int max_S, int max_T, model_state **out);
void model_state_free(model_state *s);
/* Workspace bytes (activations and, with grads, backward scratch). */
size_t model_state_workspace_bytes(const model_state *s);

/* The gradient buffer: qkv_model_num_params floats, parameter offsets. NULL
 * without grads. */
float *model_grads(model_state *s);
void model_zero_grads(model_state *s);

/* Gradient readiness, for overlapping a reduction with the backward pass:
 * model_backward calls ready(ctx, begin, end) as soon as the gradients of a
 * layer's parameters [begin, end) are final (decoder layers last to first,
 * then encoder layers last to first; embeddings, final norms and the output
 * layer are only final when model_backward returns). NULL: no calls. */
void model_set_grads_ready(model_state *s, void (*ready)(void *ctx, size_t begin, size_t end), void *ctx);

/* Runs encoder, decoder and (with labels) the loss:
 *   loss = mean over non-ignored label positions of the label-smoothed
 *          cross-entropy (F.cross_entropy(..., ignore_index=pad_id,
 *          label_smoothing=eps)); 0 when no position counts.
 * loss may be NULL. Fails with QKV_ERR_ARG on ids out of range, lengths out
 * of range, shapes larger than the state's or than max_positions. */
qkv_status model_forward(model_state *s, const model_batch *batch, const model_forward_options *opt, float *loss);

/* Accumulates d(loss)/d(parameter) into model_grads() for the last forward
 * (which must have had labels). Call model_zero_grads first to start over. */
qkv_status model_backward(model_state *s);

/* Results of the last forward, valid until the next call on this state. */
const float *model_logits(const model_state *s); /* [B, T, tgt_vocab] */

typedef enum { ATTN_ENCODER_SELF = 0, ATTN_DECODER_SELF = 1, ATTN_DECODER_CROSS = 2 } model_attention_kind;
/* Attention probabilities of one layer, [B, H, Tq, Tk]: encoder self
 * [B, He, S, S], decoder self [B, Hd, T, T], cross [B, Hd, T, S]. Rows of
 * padded queries are computed too; masked keys have probability 0. Always
 * kept (backward needs them), so no option asks for them; NULL for a layer
 * out of range or a stack the last call did not run. */
const float *model_attention(const model_state *s, model_attention_kind kind, int layer);
/* The queries, keys and values behind model_attention's probabilities, in
 * head layout: q [B, H, Tq, D], k and v [B, H, Tk, D] (biases included, no
 * scaling: the scores are q.k / sqrt(D)). Same lifetime and NULL cases. */
qkv_status model_attention_qkv(const model_state *s, model_attention_kind kind, int layer, const float **q,
                               const float **k, const float **v);

/* Decoding interface. model_encode runs the encoder only and keeps its
 * output in the state; model_decode_logits then runs the decoder on target
 * prefixes tgt_in [B, T] (same B) against that output and returns the
 * logits [B, T, V] of every position (the last valid one of row b is
 * t = tgt_len[b] - 1). Step-by-step decoding with a key/value cache is
 * below (incremental.c). */
qkv_status model_encode(model_state *s, const int *src, const int *src_len, int B, int S);
typedef struct model_decoder_weights model_decoder_weights; /* below */
/* The same with the encoder's linear layers through w's packed weights (w
 * NULL: model_encode). Inference only: no dropout. */
qkv_status model_encode_typed(model_state *s, const model_decoder_weights *w, const int *src, const int *src_len,
                              int B, int S);
const float *model_encoder_output(const model_state *s); /* [B, S, d_model] */
qkv_status model_decode_logits(model_state *s, const int *tgt_in, const int *tgt_len, int T, const float **logits);

/* ---- incremental decoding (incremental.c) ----------------------------------- */

/* A decoder cache: per decoder layer, the self-attention keys and values of
 * the tokens decoded so far ([max_T, max_B, C], one slot per step and row,
 * never moved: see incremental.c) and the cross-attention keys and values of
 * each source ([n, H, S, D], computed once and shared by its beams), the
 * decoder's weights packed for few-row products, and the scratch of one
 * step. One per decoding thread; the model stays shared.
 * Step t of row b gives the same logits as model_decode_logits at position t
 * (to rounding). */
typedef struct model_decoder_cache model_decoder_cache;

/* The decoder's weights packed for few-row products (every linear layer of
 * a step and the output projection). Made once per model and immutable:
 * any number of caches, in any threads, may share one. It reads the
 * model's parameters when made; after they change (training), make a new
 * one. The model must outlive it. */
typedef struct model_decoder_weights model_decoder_weights;
qkv_status model_decoder_weights_new(const qkv_model *m, model_decoder_weights **out);
/* The same in a compute type (wtype: a qlinear_type of kernels/qlinear.h:
 * float32 panels, int8 or bf16 weights). The encoder's linear layers are
 * packed too (model_encode_typed): a translation batch gives the encoder
 * tens to hundreds of rows, where packed-once weights beat a BLAS call that
 * repacks both operands each time. */
qkv_status model_decoder_weights_new_typed(const qkv_model *m, int wtype, model_decoder_weights **out);

/* An encoder layer's linear weights in a compute type. */
typedef struct {
    qlinear qkv, out, fc1, fc2;
} model_typed_enc_layer;
/* w's encoder layers. */
const model_typed_enc_layer *model_decoder_weights_encoder(const model_decoder_weights *w);

/* The weights that translation multiplies by in a lower compute type, as
 * whole tensors of the parameter buffer: per decoder layer self-attention
 * qkv [3C, C] and out [C, C], cross-attention qkv [3C, C] and out [C, C],
 * fc1 [F, C], fc2 [C, F]; then the output projection [V, C]; then per
 * encoder layer self-attention qkv [3C, C] and out [C, C], fc1 [F, C], fc2
 * [C, F]. fp32_too: a float32 path of translation reads it as well (the
 * output projection tied to an embedding table), so a quantized checkpoint
 * keeps its float32 copy. */
typedef struct {
    size_t offset;
    int rows, cols, fp32_too;
} model_product_tensor;
/* 6 * decoder_layers + 1 + 4 * encoder_layers. */
int model_decoder_product_count(const qkv_model *m);
/* Fills out[model_decoder_product_count(m)] in the order above. */
void model_decoder_product_tensors(const qkv_model *m, model_product_tensor *out);
/* Tensors already quantized to int8 (kernels/quant.h's scheme): q [rows,
 * cols] row-major, scale [rows]; one per model_decoder_product_tensors
 * entry, in its order. */
typedef struct {
    const int8_t *q;
    const float *scale;
} model_i8_tensor;
/* int8 decoder weights from such tensors (a quantized checkpoint): packed,
 * not re-quantized. */
qkv_status model_decoder_weights_new_i8(const qkv_model *m, const model_i8_tensor *t,
                                        model_decoder_weights **out);
/* The compute type w was packed in (a qlinear_type). */
int model_decoder_weights_type(const model_decoder_weights *w);
/* Bytes the packed weights hold. */
size_t model_decoder_weights_bytes(const model_decoder_weights *w);
void model_decoder_weights_free(model_decoder_weights *w);
/* Packings done in this process so far (model_decoder_weights_new calls,
 * including those model_cache_new makes): benchmarks and tests read it to
 * show that nothing is repacked per call. Thread-safe. */
long model_decoder_pack_count(void);

/* A cache for up to max_B rows, sources of max_S tokens and max_T steps,
 * using w (not copied: w must outlive the cache). */
qkv_status model_cache_new_shared(const model_decoder_weights *w, int max_B, int max_S, int max_T,
                                  model_decoder_cache **out);
/* The same with weights of its own, packed now from m. */
qkv_status model_cache_new(const qkv_model *m, int max_B, int max_S, int max_T, model_decoder_cache **out);
void model_cache_free(model_decoder_cache *c);
/* 1 when c was made for at least max_B rows, max_S source tokens and max_T
 * steps (it can then serve such a batch). */
int model_cache_fits(const model_decoder_cache *c, int max_B, int max_S, int max_T);
/* Starts a batch of B rows from an encoder output enc [B, S, d_model] (e.g.
 * model_encoder_output after model_encode) and its src_len [B]: computes
 * every layer's cross-attention keys and values; the length becomes 0. */
qkv_status model_cache_start(model_decoder_cache *c, const float *enc, const int *src_len, int B, int S);
/* The same for beam search: n sources (enc [n, S, d_model], src_len [n])
 * become n * beams rows, row i decoding source i / beams; the cross keys and
 * values are computed once per source. */
qkv_status model_cache_start_beams(model_decoder_cache *c, const float *enc, const int *src_len, int n, int S,
                                   int beams);
/* Feeds tokens [B] (one per row) at position model_cache_length(c), appends
 * their keys and values, and returns the logits [B, tgt_vocab] of that
 * position in *logits (valid until the next call on c). */
qkv_status model_decode_step(model_decoder_cache *c, const int *tokens, const float **logits);
/* Beam reselection: row i takes the cached state of old row rows[i]
 * (rows [B], each in [0, B), repeats allowed). */
qkv_status model_cache_reorder(model_decoder_cache *c, const int *rows);
int model_cache_length(const model_decoder_cache *c);
/* Row selection with a new row count: row i of the new batch takes the
 * cached state of old row rows[i] (rows [n], each in [0, B), repeats
 * allowed, 1 <= n <= max_B): beams reselected and finished sentences
 * dropped in one call, so later steps compute only the running rows. No
 * cached keys or values are copied: the cache records which old row each
 * new row continues. Like model_cache_reorder, it does not move
 * model_cache_cross_attention. */
qkv_status model_cache_select(model_decoder_cache *c, const int *rows, int n);
/* Cross-attention probabilities of the last step in one layer, [B, H, S]
 * (for showing alignments while translating); NULL before the first step.
 * Not reordered by model_cache_reorder. */
const float *model_cache_cross_attention(const model_decoder_cache *c, int layer);

/* Floating-point operations of the GEMMs (linear layers, attention
 * products, output projection) of one forward, for a full batch of the
 * given shape; backward is twice that (dX and dW per GEMM). */
double model_forward_flops(const qkv_model_config *c, int B, int S, int T);

#endif
