/* Finite-difference gradient checks, in double precision, of every op's
 * *_ref_f64 backward. The loss is a random projection of the output,
 * L = sum_i w_i out_i, so backward with dout = w must give dL/dinput; the
 * numerical derivative is the central difference (L(x+h) - L(x-h)) / 2h
 * over every input element. With h = 1e-5 the truncation error is ~1e-10
 * and the rounding error ~1e-11, so 1e-7 relative is a wide margin that
 * still catches any wrong term. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "kernels/kernels_ref.h"
#include "test.h"

#define H_STEP 1e-5
#define TOL 1e-7

static qkv_rng rng;
static void *allocs[128];
static int nallocs;

static double *alloc_d(size_t n)
{
    double *p = calloc(n ? n : 1, sizeof(double));
    if (!p)
        abort();
    allocs[nallocs++] = p;
    return p;
}

static double *rnd(size_t n, double scale)
{
    double *p = alloc_d(n);
    for (size_t i = 0; i < n; i++)
        p[i] = scale * (2 * (double)qkv_rng_uniform(&rng) - 1);
    return p;
}

static void free_all(void)
{
    while (nallocs > 0)
        free(allocs[--nallocs]);
}

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* The loss as a function of the current contents of the inputs. */
typedef double (*loss_fn)(void *ctx);

/* Compares analytic[n] with central differences of f over x[n]. */
static void check_grad(const char *what, double *x, size_t n, const double *analytic, loss_fn f, void *ctx)
{
    double *num = calloc(n ? n : 1, sizeof(double));
    if (!num)
        abort();
    for (size_t i = 0; i < n; i++) {
        double saved = x[i];
        x[i] = saved + H_STEP;
        double lp = f(ctx);
        x[i] = saved - H_STEP;
        double lm = f(ctx);
        x[i] = saved;
        num[i] = (lp - lm) / (2 * H_STEP);
    }
    CHECK_CLOSE_F64(analytic, num, n, TOL, what);
    double mx = 0;
    for (size_t i = 0; i < n; i++)
        mx = fmax(mx, fabs(num[i]));
    CHECK(n == 0 || mx > 0, "%s: gradient is identically zero, the check proves nothing", what);
    free(num);
}

/* ---- linear ---- */
typedef struct {
    int N, C, OC;
    double *inp, *w, *b, *out, *proj;
} linear_ctx;

static double linear_loss(void *p)
{
    linear_ctx *c = p;
    linear_forward_ref_f64(c->out, c->inp, c->w, c->b, c->N, c->C, c->OC);
    return dot(c->out, c->proj, (size_t)c->N * c->OC);
}

static void test_linear(void)
{
    linear_ctx c = {3, 5, 4, NULL, NULL, NULL, NULL, NULL};
    c.inp = rnd(15, 1), c.w = rnd(20, 1), c.b = rnd(4, 1), c.out = alloc_d(12), c.proj = rnd(12, 1);
    double *di = alloc_d(15), *dw = alloc_d(20), *db = alloc_d(4);
    linear_backward_ref_f64(di, dw, db, c.proj, c.inp, c.w, c.N, c.C, c.OC);
    check_grad("linear dinp", c.inp, 15, di, linear_loss, &c);
    check_grad("linear dweight", c.w, 20, dw, linear_loss, &c);
    check_grad("linear dbias", c.b, 4, db, linear_loss, &c);
    free_all();
}

/* ---- layer norm ---- */
typedef struct {
    int N, C;
    double *inp, *w, *b, *out, *mean, *rstd, *proj;
} ln_ctx;

static double ln_loss(void *p)
{
    ln_ctx *c = p;
    layernorm_forward_ref_f64(c->out, c->mean, c->rstd, c->inp, c->w, c->b, c->N, c->C, 1e-5);
    return dot(c->out, c->proj, (size_t)c->N * c->C);
}

static void test_layernorm(void)
{
    ln_ctx c = {3, 7, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    c.inp = rnd(21, 2), c.w = rnd(7, 1), c.b = rnd(7, 1), c.out = alloc_d(21), c.mean = alloc_d(3);
    c.rstd = alloc_d(3), c.proj = rnd(21, 1);
    ln_loss(&c);
    double *di = alloc_d(21), *dw = alloc_d(7), *db = alloc_d(7);
    layernorm_backward_ref_f64(di, dw, db, c.proj, c.inp, c.w, c.mean, c.rstd, c.N, c.C);
    check_grad("layernorm dinp", c.inp, 21, di, ln_loss, &c);
    check_grad("layernorm dweight", c.w, 7, dw, ln_loss, &c);
    check_grad("layernorm dbias", c.b, 7, db, ln_loss, &c);
    free_all();
}

/* ---- embedding ---- */
typedef struct {
    int B, T, C, off;
    const int *ids;
    double *table, *pos, *out, *proj;
} emb_ctx;

static double emb_loss(void *p)
{
    emb_ctx *c = p;
    embedding_forward_ref_f64(c->out, c->ids, c->table, c->pos, c->B, c->T, c->C, c->off, 2.5);
    return dot(c->out, c->proj, (size_t)c->B * c->T * c->C);
}

static void test_embedding(void)
{
    static const int ids[6] = {1, 3, 1, 0, 1, 4};
    emb_ctx c = {2, 3, 4, 2, ids, NULL, NULL, NULL, NULL};
    c.table = rnd(5 * 4, 1), c.pos = rnd(6 * 4, 1), c.out = alloc_d(24), c.proj = rnd(24, 1);
    double *dt = alloc_d(20), *dp = alloc_d(24);
    embedding_backward_ref_f64(dt, dp, c.proj, ids, c.B, c.T, c.C, c.off, 2.5);
    check_grad("embedding dtable (ids repeat; id 2 unused)", c.table, 20, dt, emb_loss, &c);
    check_grad("embedding dpos (learned, offset 2)", c.pos, 24, dp, emb_loss, &c);
    free_all();
}

/* ---- split / merge ---- */
typedef struct {
    int merge, B, T, H, D, ld;
    double *inp, *out, *proj;
} heads_ctx;

static double heads_loss(void *p)
{
    heads_ctx *c = p;
    if (c->merge)
        heads_merge_forward_ref_f64(c->out, c->inp, c->B, c->T, c->H, c->D);
    else
        heads_split_forward_ref_f64(c->out, c->inp, c->B, c->T, c->H, c->D, c->ld);
    return dot(c->out, c->proj, (size_t)c->B * c->T * c->H * c->D);
}

static void test_split_merge(void)
{
    for (int merge = 0; merge < 2; merge++) {
        heads_ctx c = {merge, 2, 3, 2, 3, merge ? 6 : 8, NULL, NULL, NULL};
        size_t nin = merge ? 36 : (size_t)2 * 3 * 8, nout = 36;
        c.inp = rnd(nin, 1), c.out = alloc_d(nout), c.proj = rnd(nout, 1);
        double *d = alloc_d(nin);
        if (merge)
            heads_merge_backward_ref_f64(d, c.proj, c.B, c.T, c.H, c.D);
        else
            heads_split_backward_ref_f64(d, c.proj, c.B, c.T, c.H, c.D, c.ld);
        /* split with ld > H*D: the unused columns get no gradient, which the
         * numerical derivative confirms */
        check_grad(merge ? "heads merge" : "heads split (ld 8 > H*D 6)", c.inp, nin, d, heads_loss, &c);
        free_all();
    }
}

/* ---- attention ---- */
typedef struct {
    int B, H, Tq, Tk, D, causal;
    const int *key_len;
    double *q, *k, *v, *mask, *out, *probs, *proj;
} attn_ctx;

static double attn_loss(void *p)
{
    attn_ctx *c = p;
    attention_forward_ref_f64(c->out, c->probs, c->q, c->k, c->v, c->key_len, c->causal, c->mask, c->B, c->H,
                              c->Tq, c->Tk, c->D);
    return dot(c->out, c->proj, (size_t)c->B * c->H * c->Tq * c->D);
}

static void check_attention(int Tq, int Tk, const int *key_len, int causal, int drop)
{
    attn_ctx c = {2, 2, Tq, Tk, 3, causal, key_len, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    size_t nq = (size_t)c.B * c.H * Tq * c.D, nk = (size_t)c.B * c.H * Tk * c.D, np = (size_t)c.B * c.H * Tq * Tk;
    c.q = rnd(nq, 1), c.k = rnd(nk, 1), c.v = rnd(nk, 1), c.out = alloc_d(nq), c.probs = alloc_d(np);
    c.proj = rnd(nq, 1);
    if (drop) {
        c.mask = alloc_d(np);
        dropout_mask_ref_f64(c.mask, np, 0.3f, 7);
    }
    attn_loss(&c);
    double *dq = alloc_d(nq), *dk = alloc_d(nk), *dv = alloc_d(nk), *scratch = alloc_d(np);
    attention_backward_ref_f64(dq, dk, dv, scratch, c.proj, c.probs, c.q, c.k, c.v, c.mask, c.B, c.H, Tq, Tk, c.D);
    char what[128];
    snprintf(what, sizeof what, "attention Tq=%d Tk=%d pad=%d causal=%d drop=%d: d", Tq, Tk, key_len != NULL,
             causal, drop);
    size_t len = strlen(what);
    what[len] = 'q', what[len + 1] = 0;
    check_grad(what, c.q, nq, dq, attn_loss, &c);
    what[len] = 'k';
    check_grad(what, c.k, nk, dk, attn_loss, &c);
    what[len] = 'v';
    check_grad(what, c.v, nk, dv, attn_loss, &c);
    free_all();
}

static void test_attention(void)
{
    static const int key_len[2] = {3, 5};
    for (int pad = 0; pad < 2; pad++)
        for (int causal = 0; causal < 2; causal++)
            for (int drop = 0; drop < 2; drop++) {
                check_attention(5, 5, pad ? key_len : NULL, causal, drop);
                check_attention(2, 5, pad ? key_len : NULL, causal, drop); /* decoding: queries at the end */
            }
}

/* ---- activations, residual, dropout ---- */
typedef struct {
    int kind; /* 0..2 activation, 3 residual, 4 dropout */
    size_t n;
    double *x, *y, *out, *proj;
} ew_ctx;

static double ew_loss(void *p)
{
    ew_ctx *c = p;
    if (c->kind < 3)
        activation_forward_ref_f64(c->out, c->x, c->n, (activation_kind)c->kind);
    else if (c->kind == 3)
        residual_forward_ref_f64(c->out, c->x, c->y, c->n);
    else
        dropout_forward_ref_f64(c->out, c->y, c->x, c->n, 0.4f, 11); /* y holds the mask */
    return dot(c->out, c->proj, c->n);
}

static void test_elementwise(void)
{
    static const char *names[] = {"relu", "gelu", "swish", "residual", "dropout"};
    for (int kind = 0; kind < 5; kind++) {
        ew_ctx c = {kind, 40, NULL, NULL, NULL, NULL};
        c.x = rnd(c.n, 4), c.y = rnd(c.n, 1), c.out = alloc_d(c.n), c.proj = rnd(c.n, 1);
        for (size_t i = 0; i < c.n; i++)
            if (fabs(c.x[i]) < 0.01)
                c.x[i] = 0.5; /* keep relu's kink out of reach of h */
        ew_loss(&c);
        double *dx = alloc_d(c.n), *dy = alloc_d(c.n);
        if (kind < 3)
            activation_backward_ref_f64(dx, c.proj, c.x, c.n, (activation_kind)kind);
        else if (kind == 3)
            residual_backward_ref_f64(dx, dy, c.proj, c.n);
        else
            dropout_backward_ref_f64(dx, c.proj, c.y, c.n);
        check_grad(names[kind], c.x, c.n, dx, ew_loss, &c);
        if (kind == 3)
            check_grad("residual (second input)", c.y, c.n, dy, ew_loss, &c);
        if (kind == 4) {
            int dropped = 0;
            for (size_t i = 0; i < c.n; i++)
                dropped += c.y[i] == 0;
            CHECK(dropped > 0 && dropped < (int)c.n, "dropout mask dropped %d of %zu", dropped, c.n);
        }
        free_all();
    }
}

/* ---- cross-entropy ---- */
typedef struct {
    int N, V;
    double eps;
    const int *targets;
    double *logits, *loss, *probs, *proj;
} ce_ctx;

static double ce_loss(void *p)
{
    ce_ctx *c = p;
    crossentropy_forward_ref_f64(c->loss, c->probs, c->logits, c->targets, c->N, c->V, c->eps, -1);
    return dot(c->loss, c->proj, (size_t)c->N);
}

static void test_crossentropy(void)
{
    static const int targets[5] = {2, -1, 0, 6, 2};
    for (int e = 0; e < 2; e++) {
        ce_ctx c = {5, 7, e ? 0.1 : 0.0, targets, NULL, NULL, NULL, NULL};
        c.logits = rnd(35, 3), c.loss = alloc_d(5), c.probs = alloc_d(35), c.proj = rnd(5, 1);
        ce_loss(&c);
        CHECK(c.loss[1] == 0, "ignored row has loss %g", c.loss[1]);
        double *d = alloc_d(35);
        crossentropy_backward_ref_f64(d, c.probs, targets, c.proj, c.N, c.V, c.eps, -1);
        check_grad(e ? "crossentropy, label smoothing 0.1, ignore_index -1" : "crossentropy, ignore_index -1",
                   c.logits, 35, d, ce_loss, &c);
        for (int v = 0; v < 7; v++)
            CHECK(d[7 + v] == 0, "ignored row: dlogits[1, %d] = %g", v, d[7 + v]);
        free_all();
    }
}

static const test_case cases[] = {
    TEST(test_linear), TEST(test_layernorm), TEST(test_embedding), TEST(test_split_merge),
    TEST(test_attention), TEST(test_elementwise), TEST(test_crossentropy),
};

int main(int argc, char **argv)
{
    qkv_rng_seed(&rng, 314159);
    return test_main(argc, argv, cases, TEST_COUNT(cases));
}
