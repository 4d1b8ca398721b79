/* Kernels against PyTorch 1.13: fixtures in tests/golden/ops/, written by
 * scripts/golden/ops.py (inputs, float32 outputs, a random upstream gradient
 * and autograd's input gradients). Forward outputs must agree within 1e-5
 * and gradients within 1e-4, both as max|diff| / max|want|. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/safetensors.h"
#include "kernels/kernels.h"
#include "qkv.h"
#include "test.h"

#define TOL_FWD 1e-5
#define TOL_GRAD 1e-4

static void *allocs[64];
static int nallocs;

static void *track(void *p)
{
    if (!p)
        abort();
    allocs[nallocs++] = p;
    return p;
}

static void free_all(void)
{
    while (nallocs > 0)
        free(allocs[--nallocs]);
}

static st_file *open_fixture(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/ops/%s.safetensors", test_golden_dir(), name);
    st_file *f = NULL;
    if (st_open(&f, path) != QKV_OK) {
        CHECK(0, "cannot load fixture: %s (regenerate with /usr/bin/python3 scripts/golden/ops.py)", qkv_last_error());
        return NULL;
    }
    return f;
}

static size_t numel(const st_file *f, const char *name)
{
    const st_tensor *t = st_find(f, name);
    if (!t)
        return 0;
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= (size_t)t->shape[i];
    return n;
}

/* The tensor as floats (zeros for a gradient that starts empty: zeros(f, name)). */
static float *get(const st_file *f, const char *name)
{
    size_t n = numel(f, name);
    float *p = track(calloc(n ? n : 1, sizeof(float)));
    if (st_read_f32(f, name, p, n) != QKV_OK)
        CHECK(0, "fixture tensor '%s': %s", name, qkv_last_error());
    return p;
}

static int *get_i(const st_file *f, const char *name)
{
    size_t n = numel(f, name);
    int32_t *p = track(calloc(n ? n : 1, sizeof(int32_t)));
    if (st_read_i32(f, name, p, n) != QKV_OK)
        CHECK(0, "fixture tensor '%s': %s", name, qkv_last_error());
    return p;
}

static float *zeros(const st_file *f, const char *name) { return track(calloc(numel(f, name) + 1, sizeof(float))); }

/* Compares got with the fixture tensor `name`. */
static void expect(const st_file *f, const char *op, const char *name, const float *got, double tol)
{
    char what[128];
    snprintf(what, sizeof what, "%s: %s vs PyTorch", op, name);
    CHECK_CLOSE_F32(got, get(f, name), numel(f, name), tol, what);
}

static void test_linear(void)
{
    st_file *f = open_fixture("linear");
    if (!f)
        return;
    const st_tensor *t = st_find(f, "weight");
    int OC = (int)t->shape[0], C = (int)t->shape[1], N = (int)(numel(f, "inp") / C);
    float *inp = get(f, "inp"), *w = get(f, "weight"), *b = get(f, "bias"), *dout = get(f, "dout");
    float *out = zeros(f, "out"), *di = zeros(f, "inp"), *dw = zeros(f, "weight"), *db = zeros(f, "bias");
    linear_forward(out, inp, w, b, N, C, OC);
    linear_backward(di, dw, db, dout, inp, w, N, C, OC);
    expect(f, "linear", "out", out, TOL_FWD);
    expect(f, "linear", "dinp", di, TOL_GRAD);
    expect(f, "linear", "dweight", dw, TOL_GRAD);
    expect(f, "linear", "dbias", db, TOL_GRAD);
    st_close(f);
    free_all();
}

static void test_layernorm(void)
{
    st_file *f = open_fixture("layernorm");
    if (!f)
        return;
    int C = (int)numel(f, "weight"), N = (int)(numel(f, "inp") / C);
    float *inp = get(f, "inp"), *w = get(f, "weight"), *b = get(f, "bias"), *dout = get(f, "dout");
    float *out = zeros(f, "out"), *mean = track(calloc(N, 4)), *rstd = track(calloc(N, 4));
    float *di = zeros(f, "inp"), *dw = zeros(f, "weight"), *db = zeros(f, "bias");
    layernorm_forward(out, mean, rstd, inp, w, b, N, C, 1e-5f);
    layernorm_backward(di, dw, db, dout, inp, w, mean, rstd, N, C);
    expect(f, "layernorm", "out", out, TOL_FWD);
    expect(f, "layernorm", "dinp", di, TOL_GRAD);
    expect(f, "layernorm", "dweight", dw, TOL_GRAD);
    expect(f, "layernorm", "dbias", db, TOL_GRAD);
    st_close(f);
    free_all();
}

static void test_embedding_sinusoidal(void)
{
    st_file *f = open_fixture("embedding");
    if (!f)
        return;
    int *s = get_i(f, "shape");
    int B = s[0], T = s[1], C = s[2], P = s[4], off = s[5];
    float scale = get(f, "scale")[0];
    int *ids = get_i(f, "ids");
    float *pos = zeros(f, "positions");
    sinusoidal_positions(pos, P, C);
    expect(f, "sinusoidal_positions (Marian/HF layout)", "positions", pos, TOL_FWD);
    float *table = get(f, "table"), *dout = get(f, "dout");
    float *out = zeros(f, "out"), *dt = zeros(f, "table");
    embedding_forward(out, ids, table, pos, B, T, C, off, scale);
    embedding_backward(dt, NULL, dout, ids, B, T, C, off, scale);
    expect(f, "embedding", "out", out, TOL_FWD);
    expect(f, "embedding", "dtable", dt, TOL_GRAD);
    st_close(f);
    free_all();
}

static void check_attention(const char *name)
{
    st_file *f = open_fixture(name);
    if (!f)
        return;
    int *s = get_i(f, "shape");
    int B = s[0], H = s[1], Tq = s[2], Tk = s[3], D = s[4], causal = s[5];
    int *key_len = get_i(f, "key_len");
    float *q = get(f, "q"), *k = get(f, "k"), *v = get(f, "v"), *dout = get(f, "dout");
    float *out = zeros(f, "out"), *probs = zeros(f, "probs"), *scratch = zeros(f, "probs");
    float *dq = zeros(f, "q"), *dk = zeros(f, "k"), *dv = zeros(f, "v");
    attention_forward(out, probs, q, k, v, key_len, causal, NULL, B, H, Tq, Tk, D);
    attention_backward(dq, dk, dv, scratch, dout, probs, q, k, v, NULL, B, H, Tq, Tk, D);
    expect(f, name, "probs", probs, TOL_FWD);
    expect(f, name, "out", out, TOL_FWD);
    expect(f, name, "dq", dq, TOL_GRAD);
    expect(f, name, "dk", dk, TOL_GRAD);
    expect(f, name, "dv", dv, TOL_GRAD);
    st_close(f);
    free_all();
}

static void test_attention_padding(void) { check_attention("attention_pad"); }
static void test_attention_causal(void) { check_attention("attention_causal"); }
static void test_attention_decode(void) { check_attention("attention_decode"); }
static void test_attention_cross(void) { check_attention("attention_cross"); }

static void test_heads(void)
{
    for (int merge = 0; merge < 2; merge++) {
        const char *name = merge ? "heads_merge" : "heads_split";
        st_file *f = open_fixture(name);
        if (!f)
            return;
        int *s = get_i(f, "shape");
        int B = s[0], T = s[1], H = s[2], D = s[3];
        float *inp = get(f, "inp"), *dout = get(f, "dout"), *out = zeros(f, "out"), *di = zeros(f, "inp");
        if (merge) {
            heads_merge_forward(out, inp, B, T, H, D);
            heads_merge_backward(di, dout, B, T, H, D);
        } else {
            heads_split_forward(out, inp, B, T, H, D, H * D);
            heads_split_backward(di, dout, B, T, H, D, H * D);
        }
        expect(f, name, "out", out, TOL_FWD);
        expect(f, name, "dinp", di, TOL_GRAD);
        st_close(f);
        free_all();
    }
}

static void test_activations(void)
{
    static const char *names[] = {"act_relu", "act_gelu", "act_swish"};
    for (int a = 0; a < 3; a++) {
        st_file *f = open_fixture(names[a]);
        if (!f)
            return;
        size_t n = numel(f, "inp");
        float *inp = get(f, "inp"), *dout = get(f, "dout"), *out = zeros(f, "out"), *di = zeros(f, "inp");
        activation_forward(out, inp, n, (activation_kind)a);
        activation_backward(di, dout, inp, n, (activation_kind)a);
        expect(f, names[a], "out", out, TOL_FWD);
        expect(f, names[a], "dinp", di, TOL_GRAD);
        st_close(f);
        free_all();
    }
}

static void test_softmax(void)
{
    st_file *f = open_fixture("softmax");
    if (!f)
        return;
    const st_tensor *t = st_find(f, "inp");
    int N = (int)t->shape[0], V = (int)t->shape[1];
    float *inp = get(f, "inp"), *out = zeros(f, "out");
    softmax_forward(out, inp, N, V);
    expect(f, "softmax", "out", out, TOL_FWD);
    log_softmax_forward(out, inp, N, V);
    expect(f, "log_softmax", "log_out", out, TOL_FWD);
    st_close(f);
    free_all();
}

static void test_crossentropy(void)
{
    st_file *f = open_fixture("crossentropy");
    if (!f)
        return;
    const st_tensor *t = st_find(f, "logits");
    int N = (int)t->shape[0], V = (int)t->shape[1];
    int *targets = get_i(f, "targets");
    float *logits = get(f, "logits"), *dloss = get(f, "dloss");
    float *loss = zeros(f, "loss"), *probs = zeros(f, "logits"), *dl = zeros(f, "logits");
    crossentropy_forward(loss, probs, logits, targets, N, V, 0.1f, -100);
    crossentropy_backward(dl, probs, targets, dloss, N, V, 0.1f, -100);
    expect(f, "crossentropy (label_smoothing 0.1, ignore_index -100)", "loss", loss, TOL_FWD);
    expect(f, "crossentropy (label_smoothing 0.1, ignore_index -100)", "dlogits", dl, TOL_GRAD);
    /* reduction 'mean' over the kept tokens: dloss = 1 / kept, computed in
     * place over probs to cover that mode against PyTorch too */
    int kept = 0;
    double sum = 0;
    for (int i = 0; i < N; i++)
        if (targets[i] != -100) {
            kept++;
            sum += loss[i];
        }
    float mean = (float)(sum / kept), want = get(f, "mean_loss")[0];
    CHECK(fabsf(mean - want) <= TOL_FWD * fabsf(want), "mean loss %.9g, PyTorch %.9g", mean, want);
    for (int i = 0; i < N; i++)
        dloss[i] = 1.0f / kept;
    crossentropy_backward(probs, probs, targets, dloss, N, V, 0.1f, -100);
    expect(f, "crossentropy mean, in place", "dlogits_mean", probs, TOL_GRAD);
    st_close(f);
    free_all();
}

static void test_adamw(void)
{
    st_file *f = open_fixture("adamw");
    if (!f)
        return;
    size_t n = numel(f, "param0");
    float *h = get(f, "hyper");
    float *p = get(f, "param0"), *m = zeros(f, "param0"), *v = zeros(f, "param0");
    for (int s = 0; s < 3; s++) {
        char name[16];
        snprintf(name, sizeof name, "grad%d", s);
        adamw_update(p, m, v, get(f, name), n, h[0], h[1], h[2], h[3], h[4], s + 1);
    }
    expect(f, "adamw, 3 steps", "m3", m, TOL_FWD);
    expect(f, "adamw, 3 steps", "v3", v, TOL_FWD);
    expect(f, "adamw, 3 steps", "param3", p, TOL_FWD);
    st_close(f);
    free_all();
}

static const test_case cases[] = {
    TEST(test_linear),           TEST(test_layernorm),        TEST(test_embedding_sinusoidal),
    TEST(test_attention_padding), TEST(test_attention_causal), TEST(test_attention_decode),
    TEST(test_attention_cross),  TEST(test_heads),            TEST(test_activations),
    TEST(test_softmax),          TEST(test_crossentropy),     TEST(test_adamw),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
