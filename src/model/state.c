/* model_state: the workspace layout (every activation and scratch buffer
 * of a forward and backward, sized from the batch limits and carved from
 * one arena), creation, freeing and the gradient buffer. */
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "model/state.h"

/* ---- workspace layout ---------------------------------------------------- */

/* Carving from the state's arena; with arena NULL it only measures. */
typedef struct {
    qkv_arena *arena;
    size_t used;
} carver;

static float *take(carver *c, size_t nfloats)
{
    size_t bytes = qkv_arena_round(nfloats * sizeof(float));
    c->used += bytes;
    /* sized by the measuring pass over the same calls, so never NULL */
    return c->arena ? qkv_arena_alloc(c->arena, bytes) : NULL;
}

static size_t max3(size_t a, size_t b, size_t c) { return a > b ? (a > c ? a : c) : (b > c ? b : c); }

static void take_block(carver *c, block_acts *b, size_t N, size_t C)
{
    b->ln = take(c, N * C);
    b->mean = take(c, N);
    b->rstd = take(c, N);
    b->res = take(c, N * C);
}

/* atty (the heads' outputs before merging) is not needed by backward, so
 * every attention shares one buffer for it. */
static void take_attn(carver *c, attn_acts *a, size_t Nq, size_t Nk, size_t C, size_t probs, float *atty)
{
    a->q = take(c, Nq * C);
    a->k = take(c, Nk * C);
    a->v = take(c, Nk * C);
    a->probs = take(c, probs);
    a->atty = atty;
    a->merged = take(c, Nq * C);
}

/* Carves every buffer for the state's maximum shape (pointers stay fixed;
 * a smaller batch uses the first part of each). Returns the bytes needed. */
static size_t layout(model_state *s, qkv_arena *arena)
{
    const qkv_model_config *c = &s->m->cfg;
    carver cv = {arena, 0};
    size_t S = s->max_S, T = s->max_T, C = c->d_model;
    /* Token-bucketed batches are many short rows or few long ones: buffers
     * are sized by cells (rows x length), not by max rows x max length. */
    size_t Ns = s->max_src_cells, Nt = s->max_tgt_cells, Nm = Ns > Nt ? Ns : Nt, V = c->tgt_vocab_size;
    size_t He = c->encoder_heads, Hd = c->decoder_heads, Fe = c->encoder_d_ff, Fd = c->decoder_d_ff;
    size_t pe = He * Ns * S, pds = Hd * Nt * T, pdc = Hd * Nt * S;
    float *atty = take(&cv, Nm * C);
    /* a forward-only state carves layer 0 of each stack and lends it to the
     * others: within a layer, a block's input and output are distinct
     * buffers (blk[0] and blk[2]), so layer l + 1 reads layer l's output
     * from the block it does not write first */
    int nenc = s->shared_layers ? 1 : c->encoder_layers, ndec = s->shared_layers ? 1 : c->decoder_layers;
    for (int l = 0; l < nenc; l++) {
        layer_acts *L = &s->enc[l];
        take_block(&cv, &L->blk[0], Ns, C);
        take_block(&cv, &L->blk[2], Ns, C);
        take_attn(&cv, &L->self, Ns, Ns, C, pe, atty);
        L->ffn.pre = take(&cv, Ns * Fe);
        L->ffn.act = take(&cv, Ns * Fe);
    }
    for (int l = 0; l < ndec; l++) {
        layer_acts *L = &s->dec[l];
        for (int j = 0; j < 3; j++)
            take_block(&cv, &L->blk[j], Nt, C);
        take_attn(&cv, &L->self, Nt, Nt, C, pds, atty);
        take_attn(&cv, &L->cross, Nt, Ns, C, pdc, atty);
        L->ffn.pre = take(&cv, Nt * Fd);
        L->ffn.act = take(&cv, Nt * Fd);
    }
    for (int l = nenc; arena && l < c->encoder_layers; l++)
        s->enc[l] = s->enc[0];
    for (int l = ndec; arena && l < c->decoder_layers; l++)
        s->dec[l] = s->dec[0];
    s->enc_x0 = take(&cv, Ns * C);
    s->dec_x0 = take(&cv, Nt * C);
    if (c->final_norm) {
        s->enc_fin = take(&cv, Ns * C);
        s->enc_fmean = take(&cv, Ns);
        s->enc_frstd = take(&cv, Ns);
        s->dec_fin = take(&cv, Nt * C);
        s->dec_fmean = take(&cv, Nt);
        s->dec_frstd = take(&cv, Nt);
    }
    s->logits = take(&cv, Nt * V);
    s->probs = take(&cv, Nt * V);
    s->out_x = take(&cv, Nt * C);
    s->row_loss = take(&cv, Nt);
    s->dloss = take(&cv, Nt);
    size_t ffmax = Ns * Fe > Nt * Fd ? Ns * Fe : Nt * Fd, pmax = max3(pe, pds, pdc);
    s->proj_tmp = take(&cv, 3 * Nm * C);
    s->h = take(&cv, Nm * C);
    s->mask = take(&cv, max3(Nm * C, ffmax, pmax));
    s->sw.mask = s->mask;
    if (s->with_grads) {
        s->d_a = take(&cv, Nm * C);
        s->d_b = take(&cv, Nm * C);
        s->d_enc = take(&cv, Ns * C);
        s->pad_rows = take(&cv, 2 * C);
        s->d_tmp = take(&cv, Nm * C);
        s->d_h = take(&cv, Nm * C);
        s->sw.d_merged = take(&cv, Nm * C);
        s->sw.d_atty = take(&cv, Nm * C);
        s->sw.dq = take(&cv, Nm * C);
        s->sw.dk = take(&cv, Nm * C);
        s->sw.dv = take(&cv, Nm * C);
        s->sw.d_proj = take(&cv, 3 * Nm * C);
        s->sw.att = take(&cv, pmax);
        s->sw.d_pre = take(&cv, ffmax);
        s->sw.d_act = take(&cv, ffmax);
    }
    return cv.used;
}

void model_state_free(model_state *s)
{
    if (!s)
        return;
    free(s->grads);
    free(s->qscratch);
    qkv_arena_free(&s->ws);
    free(s->enc);
    free(s->dec);
    free(s->src);
    free(s->src_len);
    free(s->tgt);
    free(s->tgt_len);
    free(s->labels);
    free(s->lab_rows);
    free(s->lab_ids);
    free(s->lab_where);
    free(s);
}

qkv_status model_state_new(const qkv_model *m, int max_B, int max_S, int max_T, int with_grads,
                           model_state **out)
{
    model_state_limits lim = {max_B, max_S, max_T, (int64_t)max_B * max_S, (int64_t)max_B * max_T};
    return model_state_new_limits(m, &lim, with_grads, out);
}

static qkv_status state_new(const qkv_model *m, const model_state_limits *lim, int with_grads, int shared_layers,
                            model_state **out)
{
    *out = NULL;
    const qkv_model_config *c = &m->cfg;
    int max_B = lim->max_B, max_S = lim->max_S, max_T = lim->max_T;
    if (max_B <= 0 || max_S <= 0 || max_T <= 0 || lim->max_src_cells <= 0 || lim->max_tgt_cells <= 0)
        return qkv_fail(QKV_ERR_ARG, "model: batch shape %d x (%d, %d) must be positive", max_B, max_S, max_T);
    if (max_S > c->max_positions || max_T > c->max_positions)
        return qkv_fail(QKV_ERR_ARG, "model: sequence length %d exceeds max_positions %d",
                        max_S > max_T ? max_S : max_T, c->max_positions);
    model_state *s = calloc(1, sizeof *s);
    if (!s)
        return qkv_fail(QKV_ERR_NOMEM, "model: out of memory");
    s->m = m;
    s->max_B = max_B;
    s->max_S = max_S;
    s->max_T = max_T;
    s->max_src_cells = (size_t)(lim->max_src_cells < (int64_t)max_B * max_S ? lim->max_src_cells
                                                                              : (int64_t)max_B * max_S);
    s->max_tgt_cells = (size_t)(lim->max_tgt_cells < (int64_t)max_B * max_T ? lim->max_tgt_cells
                                                                              : (int64_t)max_B * max_T);
    s->with_grads = with_grads;
    s->shared_layers = shared_layers;
    s->enc = calloc((size_t)c->encoder_layers, sizeof *s->enc);
    s->dec = calloc((size_t)c->decoder_layers, sizeof *s->dec);
    size_t ns = s->max_src_cells, nt = s->max_tgt_cells;
    s->src = malloc(ns * sizeof(int));
    s->tgt = malloc(nt * sizeof(int));
    s->labels = malloc(nt * sizeof(int));
    s->lab_rows = malloc(nt * sizeof(int));
    s->lab_ids = malloc(nt * sizeof(int));
    s->lab_where = malloc(nt * sizeof(int));
    s->src_len = malloc((size_t)max_B * sizeof(int));
    s->tgt_len = malloc((size_t)max_B * sizeof(int));
    if (!s->enc || !s->dec || !s->src || !s->tgt || !s->labels || !s->lab_rows || !s->lab_ids || !s->lab_where ||
        !s->src_len || !s->tgt_len) {
        model_state_free(s);
        return qkv_fail(QKV_ERR_NOMEM, "model: out of memory");
    }
    size_t bytes = layout(s, NULL);
    qkv_status st = qkv_arena_init(&s->ws, bytes);
    if (with_grads)
        s->grads = aligned_alloc(64, ((m->num_params * sizeof(float)) + 63) & ~(size_t)63);
    if (st != QKV_OK || (with_grads && !s->grads)) {
        model_state_free(s);
        return qkv_fail(QKV_ERR_NOMEM, "model: cannot allocate a workspace of %zu MB and %zu gradients",
                        bytes >> 20, with_grads ? m->num_params : 0);
    }
    layout(s, &s->ws);
    if (with_grads)
        model_zero_grads(s);
    *out = s;
    return QKV_OK;
}

qkv_status model_state_new_limits(const qkv_model *m, const model_state_limits *lim, int with_grads,
                                  model_state **out)
{
    return state_new(m, lim, with_grads, 0, out);
}

qkv_status model_state_new_forward(const qkv_model *m, int max_B, int max_S, int max_T, model_state **out)
{
    model_state_limits lim = {max_B, max_S, max_T, (int64_t)max_B * max_S, (int64_t)max_B * max_T};
    return state_new(m, &lim, 0, 1, out);
}

size_t model_state_workspace_bytes(const model_state *s) { return s->ws.size; }
float *model_grads(model_state *s) { return s->grads; }

void model_zero_grads(model_state *s)
{
    if (s->grads)
        zero_floats(s->grads, s->m->num_params);
}
