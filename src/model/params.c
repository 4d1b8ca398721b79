/* The parameter table: every weight of the model is a named view (name,
 * offset, shape) into one float buffer, listed once here from the config.
 * Names follow Hugging Face Marian (without its "model." prefix) so import
 * and export are a rename at most. Tied weights are one view. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "base/io.h"
#include "base/status.h"
#include "kernels/kernels.h"
#include "model/model.h"

typedef enum { INIT_MATRIX, INIT_EMBED, INIT_ZERO, INIT_ONE } init_kind;

typedef struct {
    qkv_tensor_info *t;
    init_kind *init;
    int n, cap;
    size_t total;
    char **names;
    qkv_status err;
} table_builder;

static size_t add(table_builder *tb, init_kind init, int ndim, int d0, int d1, const char *fmt, ...)
    QKV_PRINTF(6, 7);

static size_t add(table_builder *tb, init_kind init, int ndim, int d0, int d1, const char *fmt, ...)
{
    if (tb->err != QKV_OK)
        return 0;
    if (tb->n == tb->cap) {
        int cap = tb->cap ? 2 * tb->cap : 64;
        qkv_tensor_info *t = realloc(tb->t, (size_t)cap * sizeof *t);
        if (t)
            tb->t = t;
        init_kind *in = realloc(tb->init, (size_t)cap * sizeof *in);
        if (in)
            tb->init = in;
        char **nm = realloc(tb->names, (size_t)cap * sizeof *nm);
        if (nm)
            tb->names = nm;
        if (!t || !in || !nm) {
            tb->err = qkv_fail(QKV_ERR_NOMEM, "model: out of memory building the parameter table");
            return 0;
        }
        tb->cap = cap;
    }
    char name[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    tb->names[tb->n] = strdup(name);
    if (!tb->names[tb->n]) {
        tb->err = qkv_fail(QKV_ERR_NOMEM, "model: out of memory building the parameter table");
        return 0;
    }
    qkv_tensor_info *t = &tb->t[tb->n];
    t->name = NULL;
    t->offset = tb->total;
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = ndim == 2 ? d1 : 1;
    t->size = (size_t)d0 * (size_t)(ndim == 2 ? d1 : 1);
    tb->init[tb->n] = init;
    tb->n++;
    tb->total += t->size;
    return t->offset;
}

static ln_offsets add_ln(table_builder *tb, int C, const char *prefix)
{
    ln_offsets o;
    o.w = add(tb, INIT_ONE, 1, C, 0, "%s.weight", prefix);
    o.b = add(tb, INIT_ZERO, 1, C, 0, "%s.bias", prefix);
    return o;
}

/* q, k, v weights consecutive, then their biases: see attn_offsets. */
static attn_offsets add_attention(table_builder *tb, int C, const char *prefix)
{
    attn_offsets o;
    o.qkv_w = add(tb, INIT_MATRIX, 2, C, C, "%s.q_proj.weight", prefix);
    add(tb, INIT_MATRIX, 2, C, C, "%s.k_proj.weight", prefix);
    add(tb, INIT_MATRIX, 2, C, C, "%s.v_proj.weight", prefix);
    o.qkv_b = add(tb, INIT_ZERO, 1, C, 0, "%s.q_proj.bias", prefix);
    add(tb, INIT_ZERO, 1, C, 0, "%s.k_proj.bias", prefix);
    add(tb, INIT_ZERO, 1, C, 0, "%s.v_proj.bias", prefix);
    o.out_w = add(tb, INIT_MATRIX, 2, C, C, "%s.out_proj.weight", prefix);
    o.out_b = add(tb, INIT_ZERO, 1, C, 0, "%s.out_proj.bias", prefix);
    return o;
}

static void add_layer(table_builder *tb, layer_offsets *L, const qkv_model_config *c, int decoder, int i)
{
    int C = c->d_model, F = decoder ? c->decoder_d_ff : c->encoder_d_ff;
    const char *stack = decoder ? "decoder" : "encoder";
    char p[96];
    memset(L, 0xff, sizeof *L); /* every offset NO_PARAM until set */
    L->begin = tb->total;
    snprintf(p, sizeof p, "%s.layers.%d.self_attn", stack, i);
    L->self = add_attention(tb, C, p);
    snprintf(p, sizeof p, "%s.layers.%d.self_attn_layer_norm", stack, i);
    L->ln[0] = add_ln(tb, C, p);
    if (decoder) {
        snprintf(p, sizeof p, "%s.layers.%d.encoder_attn", stack, i);
        L->cross = add_attention(tb, C, p);
        snprintf(p, sizeof p, "%s.layers.%d.encoder_attn_layer_norm", stack, i);
        L->ln[1] = add_ln(tb, C, p);
    }
    L->fc1_w = add(tb, INIT_MATRIX, 2, F, C, "%s.layers.%d.fc1.weight", stack, i);
    L->fc1_b = add(tb, INIT_ZERO, 1, F, 0, "%s.layers.%d.fc1.bias", stack, i);
    L->fc2_w = add(tb, INIT_MATRIX, 2, C, F, "%s.layers.%d.fc2.weight", stack, i);
    L->fc2_b = add(tb, INIT_ZERO, 1, C, 0, "%s.layers.%d.fc2.bias", stack, i);
    snprintf(p, sizeof p, "%s.layers.%d.final_layer_norm", stack, i);
    L->ln[2] = add_ln(tb, C, p);
    L->end = tb->total;
}

static void build_table(table_builder *tb, qkv_model *m)
{
    const qkv_model_config *c = &m->cfg;
    int C = c->d_model;
    if (c->tie_encoder_decoder_embeddings) {
        m->enc_embed = m->dec_embed = add(tb, INIT_EMBED, 2, c->src_vocab_size, C, "model.shared.weight");
    } else {
        m->enc_embed = add(tb, INIT_EMBED, 2, c->src_vocab_size, C, "encoder.embed_tokens.weight");
        m->dec_embed = add(tb, INIT_EMBED, 2, c->tgt_vocab_size, C, "decoder.embed_tokens.weight");
    }
    m->enc_pos = m->dec_pos = NO_PARAM;
    if (c->positions == QKV_POS_LEARNED) {
        m->enc_pos = add(tb, INIT_EMBED, 2, c->max_positions, C, "encoder.embed_positions.weight");
        m->dec_pos = add(tb, INIT_EMBED, 2, c->max_positions, C, "decoder.embed_positions.weight");
    }
    for (int i = 0; i < c->encoder_layers; i++)
        add_layer(tb, &m->enc_layers[i], c, 0, i);
    for (int i = 0; i < c->decoder_layers; i++)
        add_layer(tb, &m->dec_layers[i], c, 1, i);
    m->enc_final.w = m->enc_final.b = m->dec_final.w = m->dec_final.b = NO_PARAM;
    if (c->final_norm) {
        m->enc_final = add_ln(tb, C, "encoder.layer_norm");
        m->dec_final = add_ln(tb, C, "decoder.layer_norm");
    }
    m->out_w = c->tie_output_embeddings ? m->dec_embed : add(tb, INIT_MATRIX, 2, c->tgt_vocab_size, C, "lm_head.weight");
    m->out_b = c->output_bias ? add(tb, INIT_ZERO, 1, c->tgt_vocab_size, 0, "final_logits_bias") : NO_PARAM;
}

static void init_params(qkv_model *m, const init_kind *init, uint64_t seed)
{
    qkv_rng r;
    qkv_rng_seed(&r, seed);
    float emb_std = 1.0f / sqrtf((float)m->cfg.d_model);
    for (int i = 0; i < m->num_tensors; i++) {
        const qkv_tensor_info *t = &m->tensors[i];
        float *p = m->params + t->offset;
        switch (init[i]) {
        case INIT_MATRIX: {
            /* Xavier (Glorot) uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)) */
            float a = sqrtf(6.0f / (float)(t->shape[0] + t->shape[1]));
            for (size_t j = 0; j < t->size; j++)
                p[j] = (2.0f * qkv_rng_uniform(&r) - 1.0f) * a;
            break;
        }
        case INIT_EMBED:
            for (size_t j = 0; j < t->size; j++)
                p[j] = qkv_rng_normal(&r) * emb_std;
            break;
        case INIT_ZERO:
            memset(p, 0, t->size * sizeof *p);
            break;
        case INIT_ONE:
            for (size_t j = 0; j < t->size; j++)
                p[j] = 1.0f;
            break;
        }
    }
}

void model_zero_pad_rows(const qkv_model *m, float *buf)
{
    const qkv_model_config *c = &m->cfg;
    size_t C = (size_t)c->d_model;
    memset(buf + m->dec_embed + (size_t)c->pad_id * C, 0, C * sizeof *buf);
    if (m->enc_embed != m->dec_embed)
        memset(buf + m->enc_embed + (size_t)c->pad_id * C, 0, C * sizeof *buf);
}

void qkv_model_free(qkv_model *m)
{
    if (!m)
        return;
    if (m->map)
        qkv_unmap_file(m->map, m->map_len, 1);
    else
        free(m->params);
    free(m->tensors);
    free(m->names_buf);
    free(m->enc_layers);
    free(m->dec_layers);
    free(m->sin_table);
    free(m);
}

static qkv_status model_new(const qkv_model_config *c, uint64_t seed, model_params_alloc how, qkv_model **out);

qkv_status qkv_model_new(const qkv_model_config *c, uint64_t seed, qkv_model **out)
{
    return model_new(c, seed, MODEL_PARAMS_INIT, out);
}

qkv_status model_new_for_load(const qkv_model_config *c, model_params_alloc how, qkv_model **out)
{
    return model_new(c, 0, how, out);
}

void model_adopt_mapping(qkv_model *m, void *map, size_t len, const float *params)
{
    free(m->params);
    m->params = (float *)params; /* read-only: see model.h */
    m->map = map;
    m->map_len = len;
}

void model_release_params(const qkv_model *m, size_t off, size_t n)
{
    if (m->map)
        qkv_release_pages(m->params + off, n * sizeof(float));
}

static qkv_status model_new(const qkv_model_config *c, uint64_t seed, model_params_alloc how, qkv_model **out)
{
    *out = NULL;
    QKV_TRY(qkv_config_validate(c));
    qkv_model *m = calloc(1, sizeof *m);
    if (!m)
        return qkv_fail(QKV_ERR_NOMEM, "model: out of memory");
    m->cfg = *c;
    m->enc_layers = calloc((size_t)c->encoder_layers, sizeof *m->enc_layers);
    m->dec_layers = calloc((size_t)c->decoder_layers, sizeof *m->dec_layers);
    table_builder tb = {0};
    if (m->enc_layers && m->dec_layers)
        build_table(&tb, m);
    else
        tb.err = qkv_fail(QKV_ERR_NOMEM, "model: out of memory");
    size_t name_bytes = 0;
    for (int i = 0; i < tb.n; i++)
        name_bytes += strlen(tb.names[i]) + 1;
    if (tb.err == QKV_OK) {
        m->names_buf = malloc(name_bytes ? name_bytes : 1);
        if (how != MODEL_PARAMS_NONE)
            m->params = aligned_alloc(64, ((tb.total * sizeof(float)) + 63) & ~(size_t)63);
        if (c->positions == QKV_POS_SINUSOIDAL)
            m->sin_table = malloc((size_t)c->max_positions * (size_t)c->d_model * sizeof(float));
        if (!m->names_buf || (how != MODEL_PARAMS_NONE && !m->params) ||
            (c->positions == QKV_POS_SINUSOIDAL && !m->sin_table))
            tb.err = qkv_fail(QKV_ERR_NOMEM, "model: cannot allocate %zu parameters", tb.total);
    }
    if (tb.err == QKV_OK) {
        char *p = m->names_buf;
        for (int i = 0; i < tb.n; i++) {
            size_t len = strlen(tb.names[i]) + 1;
            memcpy(p, tb.names[i], len);
            tb.t[i].name = p;
            p += len;
        }
        m->tensors = tb.t;
        tb.t = NULL;
        m->num_tensors = tb.n;
        m->num_params = tb.total;
        if (how == MODEL_PARAMS_INIT) {
            init_params(m, tb.init, seed);
            model_zero_pad_rows(m, m->params);
        }
        if (m->sin_table)
            sinusoidal_positions(m->sin_table, c->max_positions, c->d_model);
    }
    for (int i = 0; i < tb.n; i++)
        free(tb.names[i]);
    free(tb.names);
    free(tb.init);
    free(tb.t);
    if (tb.err != QKV_OK) {
        qkv_model_free(m);
        return tb.err;
    }
    *out = m;
    return QKV_OK;
}

const qkv_model_config *qkv_model_get_config(const qkv_model *m) { return &m->cfg; }
size_t qkv_model_num_params(const qkv_model *m) { return m->num_params; }
float *qkv_model_params(qkv_model *m) { return m->params; }
int qkv_model_num_tensors(const qkv_model *m) { return m->num_tensors; }

qkv_status qkv_model_tensor(const qkv_model *m, int i, qkv_tensor_info *out)
{
    if (i < 0 || i >= m->num_tensors)
        return qkv_fail(QKV_ERR_ARG, "model: tensor index %d outside [0, %d)", i, m->num_tensors);
    *out = m->tensors[i];
    return QKV_OK;
}

float *qkv_model_find(qkv_model *m, const char *name, qkv_tensor_info *info)
{
    for (int i = 0; i < m->num_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) {
            if (info)
                *info = m->tensors[i];
            return m->params + m->tensors[i].offset;
        }
    qkv_fail(QKV_ERR_ARG, "model: no parameter named '%s'", name);
    return NULL;
}
