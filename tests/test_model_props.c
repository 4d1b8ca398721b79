/* Properties of the model that need no reference: padding and causal
 * masks, the decoding interfaces (full-sequence and cached incremental
 * steps, beam reordering), and sharing one model between threads. */
#include <pthread.h>

#include "base/rng.h"

#include "test_model_golden.h"

/* Changing padded source tokens changes neither the logits at valid target
 * positions nor the loss. */
static void test_padding_mask(void)
{
    for (int ci = 0; ci < NCASES; ci++) {
        golden g;
        if (!golden_load(&g, cases[ci])) {
            golden_free(&g);
            return;
        }
        const qkv_model_config *c = qkv_model_get_config(g.m);
        int V = c->tgt_vocab_size;
        float loss0 = run_forward(&g, 0, 0);
        size_t nl = (size_t)g.B * g.T * V;
        float *l0 = malloc(nl * sizeof *l0);
        memcpy(l0, model_logits(g.s), nl * sizeof *l0);
        int changed = 0;
        for (int b = 0; b < g.B; b++)
            for (int t = g.src_len[b]; t < g.S; t++, changed++)
                g.src[b * g.S + t] = (g.src[b * g.S + t] + 7 + t) % c->src_vocab_size;
        CHECK(changed > 0, "%s: the fixture has no padded source position", cases[ci]);
        float loss1 = run_forward(&g, 0, 0);
        CHECK(fabsf(loss1 - loss0) <= 1e-6f * fabsf(loss0), "%s: loss %.9g became %.9g after changing padding",
              cases[ci], (double)loss0, (double)loss1);
        const float *l1 = model_logits(g.s);
        for (int b = 0; b < g.B; b++)
            for (int t = 0; t < g.tgt_len[b]; t++)
                for (int v = 0; v < V; v++) {
                    size_t i = ((size_t)b * g.T + t) * V + v;
                    if (fabsf(l1[i] - l0[i]) > 1e-6f * (1 + fabsf(l0[i]))) {
                        CHECK(0, "%s: logit [%d,%d,%d] %.9g became %.9g after changing padded source tokens",
                              cases[ci], b, t, v, (double)l0[i], (double)l1[i]);
                        b = g.B, t = g.T, v = V;
                    }
                }
        free(l0);
        golden_free(&g);
    }
}


/* Changing target token t0 changes no logit at positions before t0. */
static void test_causal_mask(void)
{
    for (int ci = 0; ci < NCASES; ci++) {
        golden g;
        if (!golden_load(&g, cases[ci])) {
            golden_free(&g);
            return;
        }
        int V = qkv_model_get_config(g.m)->tgt_vocab_size, t0 = 2;
        run_forward(&g, 0, 0);
        size_t nl = (size_t)g.B * g.T * V;
        float *l0 = malloc(nl * sizeof *l0);
        memcpy(l0, model_logits(g.s), nl * sizeof *l0);
        for (int b = 0; b < g.B; b++)
            g.tgt_in[b * g.T + t0] = (g.tgt_in[b * g.T + t0] + 5) % V;
        run_forward(&g, 0, 0);
        const float *l1 = model_logits(g.s);
        int moved_later = 0;
        for (int b = 0; b < g.B; b++)
            for (int t = 0; t < g.T; t++)
                for (int v = 0; v < V; v++) {
                    size_t i = ((size_t)b * g.T + t) * V + v;
                    int same = fabsf(l1[i] - l0[i]) <= 1e-6f * (1 + fabsf(l0[i]));
                    if (t >= t0)
                        moved_later |= !same;
                    else if (!same) {
                        CHECK(0, "%s: logit [%d,%d,%d] changed (%.9g -> %.9g) when target token %d changed",
                              cases[ci], b, t, v, (double)l0[i], (double)l1[i], t0);
                        b = g.B, t = g.T, v = V;
                    }
                }
        CHECK(moved_later, "%s: changing target token %d changed nothing at all", cases[ci], t0);
        free(l0);
        golden_free(&g);
    }
}


/* model_encode + model_decode_logits give model_forward's logits. */
static void test_decode_interface(void)
{
    golden g;
    if (!golden_load(&g, cases[1])) {
        golden_free(&g);
        return;
    }
    int V = qkv_model_get_config(g.m)->tgt_vocab_size;
    run_forward(&g, 0, 0);
    size_t nl = (size_t)g.B * g.T * V;
    float *l0 = malloc(nl * sizeof *l0);
    memcpy(l0, model_logits(g.s), nl * sizeof *l0);
    CHECK(model_decode_logits(g.s, g.tgt_in, g.tgt_len, g.T, NULL) == QKV_OK, "%s", qkv_last_error());
    qkv_status s = model_encode(g.s, g.src, g.src_len, g.B, g.S);
    CHECK(s == QKV_OK, "encode: %s", qkv_last_error());
    const float *l1 = NULL;
    s = model_decode_logits(g.s, g.tgt_in, g.tgt_len, g.T, &l1);
    CHECK(s == QKV_OK && l1, "decode: %s", qkv_last_error());
    if (l1)
        CHECK_CLOSE_F32(l1, l0, nl, 0, "decode_logits vs forward");
    /* a shorter prefix gives the same logits at its positions (causality) */
    int T2 = 3, *tgt2 = malloc((size_t)g.B * T2 * sizeof(int)), len2[8];
    for (int b = 0; b < g.B; b++) {
        memcpy(tgt2 + b * T2, g.tgt_in + b * g.T, T2 * sizeof(int));
        len2[b] = T2;
    }
    s = model_decode_logits(g.s, tgt2, len2, T2, &l1);
    CHECK(s == QKV_OK, "decode prefix: %s", qkv_last_error());
    for (int b = 0; b < g.B && s == QKV_OK; b++)
        for (int t = 0; t < T2 && t < g.tgt_len[b]; t++) {
            char what[64];
            snprintf(what, sizeof what, "prefix logits [%d,%d]", b, t);
            CHECK_CLOSE_F32(l1 + ((size_t)b * T2 + t) * V, l0 + ((size_t)b * g.T + t) * V, V, 1e-6, what);
        }
    free(tgt2);
    free(l0);
    golden_free(&g);
}

/* A forward-only state (one layer's buffers lent to every layer) gives the
 * encoder outputs and logits of a full state bit for bit, pre- and
 * post-norm, and refuses what needs every layer's activations. */
static void test_forward_state(void)
{
    for (int k = 0; k < NCASES; k++) {
        golden g;
        if (!golden_load(&g, cases[k])) {
            golden_free(&g);
            return;
        }
        const qkv_model_config *c = qkv_model_get_config(g.m);
        int V = c->tgt_vocab_size;
        size_t nl = (size_t)g.B * g.T * V, ne = (size_t)g.B * g.S * c->d_model;
        float *l0 = malloc(nl * sizeof *l0), *e0 = malloc(ne * sizeof *e0);
        const float *l1 = NULL;
        CHECK(model_encode(g.s, g.src, g.src_len, g.B, g.S) == QKV_OK, "%s", qkv_last_error());
        memcpy(e0, model_encoder_output(g.s), ne * sizeof *e0);
        CHECK(model_decode_logits(g.s, g.tgt_in, g.tgt_len, g.T, &l1) == QKV_OK, "%s", qkv_last_error());
        memcpy(l0, l1, nl * sizeof *l0);
        model_state *f = NULL;
        CHECK(model_state_new_forward(g.m, g.B, g.S, g.T, &f) == QKV_OK, "%s", qkv_last_error());
        CHECK(model_state_workspace_bytes(f) < model_state_workspace_bytes(g.s),
              "%s: forward workspace %zu bytes, full %zu", cases[k], model_state_workspace_bytes(f),
              model_state_workspace_bytes(g.s));
        CHECK(model_encode(f, g.src, g.src_len, g.B, g.S) == QKV_OK, "%s", qkv_last_error());
        CHECK_CLOSE_F32(model_encoder_output(f), e0, ne, 0, cases[k]);
        CHECK(model_decode_logits(f, g.tgt_in, g.tgt_len, g.T, &l1) == QKV_OK, "%s", qkv_last_error());
        CHECK_CLOSE_F32(l1, l0, nl, 0, cases[k]);
        CHECK(model_attention(f, ATTN_ENCODER_SELF, 0) == NULL && model_attention(f, ATTN_DECODER_CROSS, 0) == NULL,
              "%s: a forward state gave per-layer attention", cases[k]);
        CHECK(model_backward(f) == QKV_ERR_ARG, "%s: backward on a forward state", cases[k]);
        model_state_free(f);
        free(l0), free(e0);
        golden_free(&g);
        if (test_failures())
            return;
    }
}

/* model_decode_step, one position at a time with the cache, gives the
 * full-sequence logits at every valid position; after a beam-style reorder
 * the rows follow their new sources. */
static void test_incremental_decoding(void)
{
    for (int ci = 0; ci < NCASES; ci++) {
        golden g;
        if (!golden_load(&g, cases[ci])) {
            golden_free(&g);
            return;
        }
        int V = qkv_model_get_config(g.m)->tgt_vocab_size, B = g.B, T = g.T;
        CHECK(model_encode(g.s, g.src, g.src_len, B, g.S) == QKV_OK, "%s", qkv_last_error());
        const float *full_p = NULL;
        CHECK(model_decode_logits(g.s, g.tgt_in, g.tgt_len, T, &full_p) == QKV_OK, "%s", qkv_last_error());
        size_t nl = (size_t)B * T * V;
        float *full = malloc(nl * sizeof *full);
        memcpy(full, full_p, nl * sizeof *full);
        model_decoder_cache *c = NULL;
        CHECK(model_cache_new(g.m, B + 1, g.S, T, &c) == QKV_OK, "%s", qkv_last_error());
        if (!c) {
            free(full);
            golden_free(&g);
            return;
        }
        /* two passes: straight, then reordered after step 2 */
        for (int pass = 0; pass < 2; pass++) {
            int rows[3] = {0, 1, 2}, tok[3];
            CHECK(model_cache_start(c, model_encoder_output(g.s), g.src_len, B, g.S) == QKV_OK, "%s",
                  qkv_last_error());
            for (int t = 0; t < T; t++) {
                if (pass == 1 && t == 2) {
                    int re[3] = {2, 0, 0};
                    CHECK(model_cache_reorder(c, re) == QKV_OK, "%s", qkv_last_error());
                    for (int b = 0; b < B; b++)
                        rows[b] = re[b];
                }
                for (int b = 0; b < B; b++)
                    tok[b] = g.tgt_in[rows[b] * T + t];
                const float *lg = NULL;
                qkv_status s = model_decode_step(c, tok, &lg);
                CHECK(s == QKV_OK, "step %d: %s", t, qkv_last_error());
                if (s != QKV_OK)
                    break;
                const qkv_model_config *mc = qkv_model_get_config(g.m);
                int H = mc->decoder_heads, S = g.S;
                for (int b = 0; b < B; b++) {
                    int r = rows[b];
                    if (t >= g.tgt_len[r])
                        continue;
                    for (int l = 0; l < mc->decoder_layers; l++) {
                        const float *pa = model_cache_cross_attention(c, l);
                        const float *fa = model_attention(g.s, ATTN_DECODER_CROSS, l);
                        CHECK(pa && fa, "cross attention of layer %d missing", l);
                        for (int h = 0; pa && fa && h < H; h++) {
                            char w2[128];
                            snprintf(w2, sizeof w2, "%s step %d row %d layer %d head %d cross attention", cases[ci], t,
                                     b, l, h);
                            CHECK_CLOSE_F32(pa + ((size_t)b * H + h) * S, fa + (((size_t)r * H + h) * T + t) * S, S,
                                            1e-5, w2);
                        }
                    }
                    char what[128];
                    snprintf(what, sizeof what, "%s pass %d step %d row %d (source row %d)", cases[ci], pass, t, b, r);
                    CHECK_CLOSE_F32(lg + (size_t)b * V, full + ((size_t)r * T + t) * V, V, 1e-5, what);
                }
            }
            CHECK(model_cache_length(c) == T, "length %d after %d steps", model_cache_length(c), T);
            int tok0[3] = {0, 0, 0};
            const float *lg;
            CHECK(model_decode_step(c, tok0, &lg) == QKV_ERR_ARG, "a step beyond the cache was accepted");
        }
        model_cache_free(c);
        free(full);
        golden_free(&g);
    }
}


/* Dropout masks are counter-based: the thread count changes nothing but
 * the GEMMs' rounding. */
static void test_threads_do_not_change_dropout(void)
{
    golden g;
    if (!golden_load(&g, cases[1])) {
        golden_free(&g);
        return;
    }
    qkv_model_config c = *qkv_model_get_config(g.m);
    c.dropout = 0.3f;
    c.attention_dropout = 0.2f;
    c.activation_dropout = 0.1f;
    qkv_model *m2 = NULL;
    model_state *s2 = NULL;
    CHECK(qkv_model_new(&c, 1, &m2) == QKV_OK, "%s", qkv_last_error());
    CHECK(model_state_new(m2, g.B, g.S, g.T, 0, &s2) == QKV_OK, "%s", qkv_last_error());
    memcpy(qkv_model_params(m2), qkv_model_params(g.m), qkv_model_num_params(m2) * sizeof(float));
    model_state_free(g.s);
    g.s = s2;
    int before = test_threads();
    test_set_threads(1);
    float a = run_forward(&g, 1, 99);
    test_set_threads(2);
    float b = run_forward(&g, 1, 99);
    test_set_threads(before);
    CHECK(fabsf(a - b) <= 1e-5f * fabsf(a), "loss with 1 thread %.9g, with 2 threads %.9g", (double)a, (double)b);
    qkv_model_free(m2);
    golden_free(&g);
}


/* One model, two threads, a state each: the model is never written by a
 * forward, so both get the single-threaded result. */
typedef struct {
    golden *g;
    model_state *s;
    float loss;
    qkv_status status;
} thread_job;

static void *thread_forward(void *arg)
{
    thread_job *j = arg;
    model_forward_options o = model_default_forward_options();
    o.label_smoothing = j->g->eps;
    for (int r = 0; r < 3 && j->status == QKV_OK; r++)
        j->status = model_forward(j->s, &j->g->batch, &o, &j->loss);
    return NULL;
}

static void test_shared_model_two_threads(void)
{
    golden g;
    if (!golden_load(&g, cases[2])) {
        golden_free(&g);
        return;
    }
    float want = run_forward(&g, 0, 0);
    thread_job jobs[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        jobs[i].g = &g;
        jobs[i].loss = NAN;
        jobs[i].s = NULL;
        jobs[i].status = model_state_new(g.m, g.B, g.S, g.T, 0, &jobs[i].s);
        CHECK(jobs[i].status == QKV_OK, "%s", qkv_last_error());
    }
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, thread_forward, &jobs[i]);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        CHECK(jobs[i].status == QKV_OK, "thread %d failed", i);
        CHECK(jobs[i].loss == want, "thread %d: loss %.9g, single-threaded %.9g", i, (double)jobs[i].loss,
              (double)want);
        if (jobs[i].s)
            CHECK_CLOSE_F32(model_logits(jobs[i].s), model_logits(g.s), (size_t)g.B * g.T *
                            qkv_model_get_config(g.m)->tgt_vocab_size, 0, "logits of a thread's state");
        model_state_free(jobs[i].s);
    }
    golden_free(&g);
}


/* model_cache_start_beams: n sources, beams rows each, give every row its
 * source's full-sequence logits. */
static void test_cache_beams(void)
{
    golden g;
    if (!golden_load(&g, cases[4])) {
        golden_free(&g);
        return;
    }
    int V = qkv_model_get_config(g.m)->tgt_vocab_size, n = g.B, T = g.T, beams = 3, B = n * beams;
    CHECK(model_encode(g.s, g.src, g.src_len, n, g.S) == QKV_OK, "%s", qkv_last_error());
    const float *full = NULL;
    CHECK(model_decode_logits(g.s, g.tgt_in, g.tgt_len, T, &full) == QKV_OK, "%s", qkv_last_error());
    model_decoder_cache *c = NULL;
    CHECK(model_cache_new(g.m, B, g.S, T, &c) == QKV_OK, "%s", qkv_last_error());
    CHECK(model_cache_start_beams(c, model_encoder_output(g.s), g.src_len, n, g.S, beams + 1) == QKV_ERR_ARG,
          "more rows than the cache holds accepted");
    CHECK(model_cache_start_beams(c, model_encoder_output(g.s), g.src_len, n, g.S, beams) == QKV_OK, "%s",
          qkv_last_error());
    int tok[16];
    for (int t = 0; t < T && c; t++) {
        for (int i = 0; i < B; i++)
            tok[i] = g.tgt_in[(i / beams) * T + t];
        const float *lg = NULL;
        CHECK(model_decode_step(c, tok, &lg) == QKV_OK, "%s", qkv_last_error());
        for (int i = 0; lg && i < B; i++) {
            int r = i / beams;
            if (t >= g.tgt_len[r])
                continue;
            char what[96];
            snprintf(what, sizeof what, "beam row %d (source %d) step %d", i, r, t);
            CHECK_CLOSE_F32(lg + (size_t)i * V, full + ((size_t)r * T + t) * V, V, 1e-5, what);
        }
    }
    model_cache_free(c);
    golden_free(&g);
}

/* End to end: a tiny model learns to copy random sequences with plain SGD
 * over the one parameter buffer, so the gradients are usable and not merely
 * equal to PyTorch's. After 150 steps the loss must be well below log(9) =
 * 2.2 nats, what knowing only the token distribution would give. */
static void test_learns_to_copy(void)
{
    qkv_model_config c = qkv_model_default_config();
    c.src_vocab_size = c.tgt_vocab_size = 12;
    c.shared_vocab = 1;
    c.d_model = 32;
    c.encoder_heads = c.decoder_heads = 4;
    c.encoder_d_ff = c.decoder_d_ff = 64;
    c.encoder_layers = c.decoder_layers = 1;
    c.norm = QKV_NORM_PRE;
    c.final_norm = 1;
    c.max_positions = 16;
    c.dropout = 0.0f;
    qkv_model *m = NULL;
    model_state *s = NULL;
    CHECK(qkv_model_new(&c, 11, &m) == QKV_OK, "%s", qkv_last_error());
    if (!m)
        return;
    enum { B = 16, L = 6 };
    CHECK(model_state_new(m, B, L, L + 1, 1, &s) == QKV_OK, "%s", qkv_last_error());
    if (!s) {
        qkv_model_free(m);
        return;
    }
    int src[B * L], tgt[B * (L + 1)], lab[B * (L + 1)], sl[B], tl[B];
    qkv_rng r;
    qkv_rng_seed(&r, 5);
    model_forward_options o = model_default_forward_options();
    float *P = qkv_model_params(m), first = 0, last = 0;
    size_t np = qkv_model_num_params(m);
    for (int step = 0; step < 150; step++) {
        for (int b = 0; b < B; b++) {
            sl[b] = L;
            tl[b] = L + 1;
            tgt[b * (L + 1)] = c.decoder_start_id;
            for (int t = 0; t < L; t++) {
                int y = 3 + (int)qkv_rng_below(&r, 9);
                src[b * L + t] = y;
                tgt[b * (L + 1) + t + 1] = y;
                lab[b * (L + 1) + t] = y;
            }
            lab[b * (L + 1) + L] = c.eos_id;
        }
        model_batch batch = {B, L, L + 1, src, sl, tgt, tl, lab};
        float loss;
        CHECK(model_forward(s, &batch, &o, &loss) == QKV_OK, "%s", qkv_last_error());
        model_zero_grads(s);
        CHECK(model_backward(s) == QKV_OK, "%s", qkv_last_error());
        const float *G = model_grads(s);
        for (size_t i = 0; i < np; i++)
            P[i] -= 0.3f * G[i];
        if (step == 0)
            first = loss;
        last = loss;
        if (test_failures())
            break;
    }
    CHECK(last < 1.4f && last < 0.35f * first, "copy task: loss %g at the start, %g after 150 SGD steps",
          (double)first, (double)last);
    model_state_free(s);
    qkv_model_free(m);
}

static const test_case tests[] = {
    TEST(test_padding_mask),
    TEST(test_causal_mask),
    TEST(test_decode_interface),
    TEST(test_forward_state),
    TEST(test_incremental_decoding),
    TEST(test_cache_beams),
    TEST(test_threads_do_not_change_dropout),
    TEST(test_shared_model_two_threads),
    TEST(test_learns_to_copy),
};

int main(int argc, char **argv) { return test_main(argc, argv, tests, TEST_COUNT(tests)); }
