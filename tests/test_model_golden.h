/* Shared by the model tests: loading a golden case (scripts/golden/model.py,
 * scripts/golden/model_marian.py) into a C model with a state. */
#ifndef QKV_TEST_MODEL_GOLDEN_H
#define QKV_TEST_MODEL_GOLDEN_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/safetensors.h"
#include "model/model.h"
#include "test.h"

static const char *const cases[] = {
    "post_relu_sin", "pre_gelu_learned_untied_bias", "pre_swish_shared_tied", "post_silu_final_norm_bias",
    "post_gelu_untied", "marian_hf",
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

/* A golden case loaded into a C model with a state sized for its batch. */
typedef struct {
    st_file *f;
    qkv_model *m;
    model_state *s;
    int B, S, T;
    int *src, *src_len, *tgt_in, *tgt_len, *labels;
    model_batch batch;
    float eps;
} golden;

static inline void golden_free(golden *g)
{
    st_close(g->f);
    model_state_free(g->s);
    qkv_model_free(g->m);
    free(g->src);
    free(g->src_len);
    free(g->tgt_in);
    free(g->tgt_len);
    free(g->labels);
    memset(g, 0, sizeof *g);
}

static inline float *read_f32(const golden *g, const char *name, size_t n)
{
    float *x = malloc(n * sizeof *x);
    qkv_status s = st_read_f32(g->f, name, x, n);
    CHECK(s == QKV_OK, "reading %s: %s", name, qkv_last_error());
    if (s != QKV_OK) {
        free(x);
        return NULL;
    }
    return x;
}

static inline int *read_i32(const golden *g, const char *name, size_t n)
{
    int *x = malloc((n ? n : 1) * sizeof *x);
    qkv_status s = st_read_i32(g->f, name, (int32_t *)x, n);
    CHECK(s == QKV_OK, "reading %s: %s", name, qkv_last_error());
    return x;
}

/* Loads the fixture, builds the model from its config and copies every
 * parameter in by name; returns 0 (with failures recorded) if anything is
 * missing. */
static inline int golden_load(golden *g, const char *name)
{
    memset(g, 0, sizeof *g);
    char path[512];
    snprintf(path, sizeof path, "%s/model/%s.safetensors", test_golden_dir(), name);
    if (st_open(&g->f, path) != QKV_OK) {
        CHECK(0, "%s", qkv_last_error());
        return 0;
    }
    const char *json = st_metadata(g->f, "config"), *eps = st_metadata(g->f, "label_smoothing");
    CHECK(json && eps, "%s: metadata config/label_smoothing missing", name);
    if (!json || !eps)
        return 0;
    g->eps = strtof(eps, NULL);
    qkv_model_config cfg;
    qkv_status s = qkv_config_from_json(json, &cfg);
    CHECK(s == QKV_OK, "%s: config: %s", name, qkv_last_error());
    if (s != QKV_OK)
        return 0;
    s = qkv_model_new(&cfg, 1, &g->m);
    CHECK(s == QKV_OK, "%s: model: %s", name, qkv_last_error());
    if (s != QKV_OK)
        return 0;
    /* every C tensor is in the file and the file has no parameter the C table lacks */
    int nfile = 0;
    for (int i = 0; i < st_count(g->f); i++)
        nfile += strncmp(st_get(g->f, i)->name, "param.", 6) == 0;
    CHECK(nfile == qkv_model_num_tensors(g->m), "%s: %d parameters in the file, %d in the C table", name, nfile,
          qkv_model_num_tensors(g->m));
    for (int i = 0; i < qkv_model_num_tensors(g->m); i++) {
        qkv_tensor_info t;
        qkv_model_tensor(g->m, i, &t);
        char key[256];
        snprintf(key, sizeof key, "param.%s", t.name);
        const st_tensor *st = st_find(g->f, key);
        CHECK(st != NULL, "%s: parameter %s missing from the fixture", name, t.name);
        if (!st)
            return 0;
        CHECK(st->ndim == t.ndim && st->shape[0] == t.shape[0] && (t.ndim == 1 || st->shape[1] == t.shape[1]),
              "%s: %s shape differs", name, t.name);
        if (st_read_f32(g->f, key, qkv_model_params(g->m) + t.offset, t.size) != QKV_OK) {
            CHECK(0, "%s", qkv_last_error());
            return 0;
        }
    }
    const st_tensor *ts = st_find(g->f, "src"), *tt = st_find(g->f, "tgt_in");
    CHECK(ts && tt && ts->ndim == 2 && tt->ndim == 2, "%s: src/tgt_in missing", name);
    if (!ts || !tt)
        return 0;
    g->B = (int)ts->shape[0];
    g->S = (int)ts->shape[1];
    g->T = (int)tt->shape[1];
    g->src = read_i32(g, "src", (size_t)g->B * g->S);
    g->src_len = read_i32(g, "src_len", g->B);
    g->tgt_in = read_i32(g, "tgt_in", (size_t)g->B * g->T);
    g->tgt_len = read_i32(g, "tgt_len", g->B);
    g->labels = read_i32(g, "labels", (size_t)g->B * g->T);
    model_batch b = {g->B, g->S, g->T, g->src, g->src_len, g->tgt_in, g->tgt_len, g->labels};
    g->batch = b;
    /* a state larger than the batch: every buffer is used from its start
     * with the batch's own shape */
    int ms = g->S + 2 <= cfg.max_positions ? g->S + 2 : g->S, mt = g->T + 1 <= cfg.max_positions ? g->T + 1 : g->T;
    s = model_state_new(g->m, g->B + 1, ms, mt, 1, &g->s);
    CHECK(s == QKV_OK, "%s: state: %s", name, qkv_last_error());
    return s == QKV_OK && test_failures() == 0;
}

static inline float run_forward(golden *g, int dropout, uint64_t seed)
{
    model_forward_options o = model_default_forward_options();
    o.label_smoothing = g->eps;
    o.dropout = dropout;
    o.seed = seed;
    float loss = NAN;
    qkv_status s = model_forward(g->s, &g->batch, &o, &loss);
    CHECK(s == QKV_OK, "forward: %s", qkv_last_error());
    return loss;
}


#endif
