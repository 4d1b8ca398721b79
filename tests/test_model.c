/* The whole model against PyTorch and transformers' Marian (fixtures from
 * scripts/golden/model.py and model_marian.py): logits, loss, attention and
 * every gradient; then gradients under dropout, edge shapes, the parameter
 * table and bad input. Masks, decoding and threads: test_model_props.c. */
#include "test_model_golden.h"

/* logits, loss and attention within 1e-5, every gradient within 1e-4 */
static void check_case(const char *name)
{
    golden g;
    if (!golden_load(&g, name)) {
        golden_free(&g);
        return;
    }
    const qkv_model_config *c = qkv_model_get_config(g.m);
    char what[256];
    float loss = run_forward(&g, 0, 0);
    float *want = read_f32(&g, "loss", 1);
    if (want) {
        snprintf(what, sizeof what, "%s loss", name);
        CHECK_CLOSE_F32(&loss, want, 1, 1e-5, what);
    }
    free(want);
    size_t nl = (size_t)g.B * g.T * c->tgt_vocab_size;
    if ((want = read_f32(&g, "logits", nl))) {
        snprintf(what, sizeof what, "%s logits", name);
        CHECK_CLOSE_F32(model_logits(g.s), want, nl, 1e-5, what);
    }
    free(want);
    static const char *const kinds[] = {"encoder.self", "decoder.self", "decoder.cross"};
    for (int k = 0; k < 3; k++) {
        int layers = k == 0 ? c->encoder_layers : c->decoder_layers, H = k == 0 ? c->encoder_heads : c->decoder_heads;
        int Tq = k == 0 ? g.S : g.T, Tk = k == 1 ? g.T : g.S;
        for (int l = 0; l < layers; l++) {
            char key[64];
            snprintf(key, sizeof key, "attn.%s.%d", kinds[k], l);
            size_t n = (size_t)g.B * H * Tq * Tk;
            if ((want = read_f32(&g, key, n))) {
                snprintf(what, sizeof what, "%s %s", name, key);
                CHECK_CLOSE_F32(model_attention(g.s, (model_attention_kind)k, l), want, n, 1e-5, what);
            }
            free(want);
        }
    }
    model_zero_grads(g.s);
    qkv_status s = model_backward(g.s);
    CHECK(s == QKV_OK, "backward: %s", qkv_last_error());
    double gmax = 0;
    for (size_t i = 0; i < qkv_model_num_params(g.m); i++)
        gmax = fmax(gmax, fabsf(model_grads(g.s)[i]));
    CHECK(gmax > 0, "%s: every gradient is zero", name);
    for (int i = 0; i < qkv_model_num_tensors(g.m); i++) {
        qkv_tensor_info t;
        qkv_model_tensor(g.m, i, &t);
        char key[256];
        snprintf(key, sizeof key, "grad.%s", t.name);
        const float *got = model_grads(g.s) + t.offset;
        size_t len = strlen(t.name);
        if (len >= 11 && !strcmp(t.name + len - 11, "k_proj.bias")) {
            /* Zero in exact arithmetic: a key bias adds q.b_k to every score
             * of a row, and softmax ignores a shift of its row. The relative
             * metric is meaningless on rounding noise, so check that both
             * sides are noise against the largest gradient of the model. */
            if ((want = read_f32(&g, key, t.size))) {
                for (size_t j = 0; j < t.size; j++) {
                    CHECK(fabs(want[j]) <= 1e-12 * gmax && fabsf(got[j]) <= 1e-6 * gmax,
                          "%s d/d %s[%zu]: got %g, want %g, expected both ~0 (largest gradient %g)", name, t.name, j,
                          (double)got[j], (double)want[j], gmax);
                    if (test_failures())
                        break;
                }
            }
        } else if ((want = read_f32(&g, key, t.size))) {
            snprintf(what, sizeof what, "%s d/d %s", name, t.name);
            CHECK_CLOSE_F32(got, want, t.size, 1e-4, what);
        }
        free(want);
    }
    golden_free(&g);
}

static void test_golden_post_relu_sin(void) { check_case(cases[0]); }
static void test_golden_pre_gelu_learned_untied_bias(void) { check_case(cases[1]); }
static void test_golden_pre_swish_shared_tied(void) { check_case(cases[2]); }
static void test_golden_post_silu_final_norm_bias(void) { check_case(cases[3]); }
static void test_golden_post_gelu_untied(void) { check_case(cases[4]); }
/* made by transformers' MarianMTModel itself (scripts/golden/model_marian.py) */
static void test_golden_marian_hf(void) { check_case(cases[5]); }

/* Dropout: repeatable per seed, different across seeds, and backward uses
 * the same masks as forward (checked by central finite differences of the
 * loss in float, on the parameters with the largest gradients). */
static void test_dropout_gradients(void)
{
    golden g;
    if (!golden_load(&g, cases[0])) {
        golden_free(&g);
        return;
    }
    qkv_model_config c = *qkv_model_get_config(g.m);
    c.dropout = 0.2f;
    c.attention_dropout = 0.15f;
    c.activation_dropout = 0.1f;
    qkv_model *m2 = NULL;
    CHECK(qkv_model_new(&c, 1, &m2) == QKV_OK, "%s", qkv_last_error());
    memcpy(qkv_model_params(m2), qkv_model_params(g.m), qkv_model_num_params(g.m) * sizeof(float));
    model_state *s2 = NULL;
    CHECK(model_state_new(m2, g.B, g.S, g.T, 1, &s2) == QKV_OK, "%s", qkv_last_error());
    model_state_free(g.s);
    g.s = s2;
    float a = run_forward(&g, 1, 77), b = run_forward(&g, 1, 77), d = run_forward(&g, 1, 78),
          off = run_forward(&g, 0, 77);
    CHECK(a == b, "same seed gave losses %.9g and %.9g", (double)a, (double)b);
    CHECK(a != d, "seeds 77 and 78 gave the same loss %.9g", (double)a);
    CHECK(a != off, "dropout on and off gave the same loss %.9g", (double)a);
    run_forward(&g, 1, 77);
    model_zero_grads(g.s);
    CHECK(model_backward(g.s) == QKV_OK, "%s", qkv_last_error());
    size_t np = qkv_model_num_params(m2);
    float *grad = malloc(np * sizeof *grad), *P = qkv_model_params(m2);
    memcpy(grad, model_grads(g.s), np * sizeof *grad);
    /* In a tensor of each kind (every dropout site feeds one of them), the
     * entry with the largest gradient: a float difference quotient is only
     * meaningful where the slope is well above the loss's rounding. */
    static const char *const names[] = {
        "encoder.embed_tokens.weight",          "encoder.layers.0.self_attn.q_proj.weight",
        "encoder.layers.0.fc1.weight",          "encoder.layers.1.final_layer_norm.weight",
        "decoder.layers.0.self_attn.v_proj.weight", "decoder.layers.0.encoder_attn.k_proj.weight",
        "decoder.layers.1.fc2.bias",            "decoder.embed_tokens.weight",
    };
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        qkv_tensor_info t;
        float *w = qkv_model_find(m2, names[k], &t);
        CHECK(w != NULL, "%s", qkv_last_error());
        if (!w)
            continue;
        size_t best = t.offset;
        for (size_t i = t.offset; i < t.offset + t.size; i++)
            if (fabsf(grad[i]) > fabsf(grad[best]))
                best = i;
        float h = 2e-3f, p0 = P[best];
        P[best] = p0 + h;
        double lp = run_forward(&g, 1, 77);
        P[best] = p0 - h;
        double lm = run_forward(&g, 1, 77);
        P[best] = p0;
        double fd = (lp - lm) / (2.0 * h);
        CHECK(fabs(fd - grad[best]) <= 0.02 * fabs(grad[best]) + 2e-4,
              "%s[%zu]: analytic gradient %.6g, finite difference %.6g", names[k], best - t.offset,
              (double)grad[best], fd);
    }
    free(grad);
    golden_free(&g);
    qkv_model_free(m2);
}


/* Backward accumulates: two forward+backward passes without zeroing give
 * twice the gradient; a backward without a fresh forward is refused. */
static void test_gradient_accumulation(void)
{
    golden g;
    if (!golden_load(&g, cases[3])) {
        golden_free(&g);
        return;
    }
    size_t np = qkv_model_num_params(g.m);
    run_forward(&g, 0, 0);
    model_zero_grads(g.s);
    CHECK(model_backward(g.s) == QKV_OK, "%s", qkv_last_error());
    float *once = malloc(np * sizeof *once);
    memcpy(once, model_grads(g.s), np * sizeof *once);
    CHECK(model_backward(g.s) == QKV_ERR_ARG, "a second backward after one forward was accepted");
    run_forward(&g, 0, 0);
    CHECK(model_backward(g.s) == QKV_OK, "%s", qkv_last_error());
    for (size_t i = 0; i < np; i++)
        once[i] *= 2;
    CHECK_CLOSE_F32(model_grads(g.s), once, np, 1e-6, "two accumulated backward passes vs 2 x one");
    free(once);
    golden_free(&g);
}


/* Rows with no source token or no target token give finite results (their
 * attention rows are all masked: zeros, not NaN) and leave other rows alone. */
static void test_empty_rows(void)
{
    golden g;
    if (!golden_load(&g, cases[0])) {
        golden_free(&g);
        return;
    }
    const qkv_model_config *c = qkv_model_get_config(g.m);
    int V = c->tgt_vocab_size;
    run_forward(&g, 0, 0);
    size_t nl = (size_t)g.B * g.T * V;
    float *l0 = malloc(nl * sizeof *l0);
    memcpy(l0, model_logits(g.s), nl * sizeof *l0);
    g.src_len[1] = 0; /* row 1: empty source */
    g.tgt_len[2] = 0; /* row 2: empty target, so no label counts */
    for (int t = 0; t < g.T; t++)
        g.labels[2 * g.T + t] = c->pad_id;
    float loss = run_forward(&g, 0, 0);
    CHECK(isfinite(loss), "loss %g", (double)loss);
    const float *l1 = model_logits(g.s);
    for (size_t i = 0; i < nl; i++)
        if (!isfinite(l1[i])) {
            CHECK(0, "logit %zu is %g", i, (double)l1[i]);
            break;
        }
    /* row 0 is untouched by the other rows */
    CHECK_CLOSE_F32(l1, l0, (size_t)g.T * V, 0, "row 0 logits");
    model_zero_grads(g.s);
    CHECK(model_backward(g.s) == QKV_OK, "%s", qkv_last_error());
    const float *G = model_grads(g.s);
    for (size_t i = 0; i < qkv_model_num_params(g.m); i++)
        if (!isfinite(G[i])) {
            CHECK(0, "gradient %zu is %g", i, (double)G[i]);
            break;
        }
    /* nothing counts: loss 0 and no gradient at all */
    for (int b = 0; b < g.B; b++)
        for (int t = 0; t < g.T; t++)
            g.labels[b * g.T + t] = c->pad_id;
    loss = run_forward(&g, 0, 0);
    CHECK(loss == 0.0f, "loss with every label ignored: %g", (double)loss);
    model_zero_grads(g.s);
    CHECK(model_backward(g.s) == QKV_OK, "%s", qkv_last_error());
    for (size_t i = 0; i < qkv_model_num_params(g.m); i++)
        if (G[i] != 0.0f) {
            CHECK(0, "gradient %zu is %g with no label", i, (double)G[i]);
            break;
        }
    free(l0);
    golden_free(&g);
}


/* The smallest batch (one row, one source and one target token) runs
 * forward and backward to finite values, and a row's result does not depend
 * on the batch it is in. */
static void test_tiny_shapes(void)
{
    golden g;
    if (!golden_load(&g, cases[1])) {
        golden_free(&g);
        return;
    }
    const qkv_model_config *c = qkv_model_get_config(g.m);
    int V = c->tgt_vocab_size;
    run_forward(&g, 0, 0);
    /* row 1 of the golden batch alone, cut to its lengths */
    int S1 = g.src_len[1], T1 = g.tgt_len[1];
    int src[16], tgt[16], lab[16], sl = S1, tl = T1;
    memcpy(src, g.src + g.S, S1 * sizeof(int));
    memcpy(tgt, g.tgt_in + g.T, T1 * sizeof(int));
    memcpy(lab, g.labels + g.T, T1 * sizeof(int));
    float *want = malloc((size_t)T1 * V * sizeof *want);
    for (int t = 0; t < T1; t++)
        memcpy(want + (size_t)t * V, model_logits(g.s) + ((size_t)g.T + t) * V, V * sizeof *want);
    model_batch one = {1, S1, T1, src, &sl, tgt, &tl, lab};
    model_forward_options o = model_default_forward_options();
    CHECK(model_forward(g.s, &one, &o, NULL) == QKV_OK, "%s", qkv_last_error());
    CHECK_CLOSE_F32(model_logits(g.s), want, (size_t)T1 * V, 1e-5, "row 1 alone vs in the batch");
    free(want);
    model_batch tiny = {1, 1, 1, src, (int[]){1}, tgt, (int[]){1}, lab};
    float loss = NAN;
    CHECK(model_forward(g.s, &tiny, &o, &loss) == QKV_OK, "%s", qkv_last_error());
    CHECK(isfinite(loss) && loss > 0, "1 x 1 x 1 loss %g", (double)loss);
    model_zero_grads(g.s);
    CHECK(model_backward(g.s) == QKV_OK, "%s", qkv_last_error());
    double norm = 0;
    for (size_t i = 0; i < qkv_model_num_params(g.m); i++)
        norm += (double)model_grads(g.s)[i] * model_grads(g.s)[i];
    CHECK(isfinite(norm) && norm > 0, "1 x 1 x 1 gradient norm^2 %g", norm);
    golden_free(&g);
}


static void test_init_and_table(void)
{
    qkv_model_config c = qkv_model_default_config();
    c.src_vocab_size = c.tgt_vocab_size = 100;
    c.d_model = 64;
    c.encoder_heads = c.decoder_heads = 4;
    c.encoder_d_ff = c.decoder_d_ff = 128;
    c.encoder_layers = 2;
    c.decoder_layers = 1;
    c.shared_vocab = 1;
    c.tie_encoder_decoder_embeddings = 1;
    qkv_model *m = NULL;
    CHECK(qkv_model_new(&c, 5, &m) == QKV_OK, "%s", qkv_last_error());
    if (!m)
        return;
    /* tied: one view, no lm_head, no separate token tables */
    CHECK(qkv_model_find(m, "model.shared.weight", NULL) != NULL, "model.shared.weight missing");
    CHECK(qkv_model_find(m, "lm_head.weight", NULL) == NULL, "lm_head.weight exists though tied");
    CHECK(qkv_model_find(m, "encoder.embed_tokens.weight", NULL) == NULL, "separate encoder table though tied");
    CHECK(m->enc_embed == m->dec_embed && m->out_w == m->dec_embed, "tied weights are not one view");
    /* the views tile the buffer exactly */
    size_t total = 0;
    for (int i = 0; i < qkv_model_num_tensors(m); i++) {
        qkv_tensor_info t;
        qkv_model_tensor(m, i, &t);
        CHECK(t.offset == total, "tensor %s at offset %zu, expected %zu", t.name, t.offset, total);
        total += t.size;
    }
    CHECK(total == qkv_model_num_params(m), "views cover %zu of %zu floats", total, qkv_model_num_params(m));
    size_t C = 64, F = 128, V = 100;
    size_t enc_layer = 4 * (C * C + C) + 2 * C * F + F + C + 4 * C;
    size_t dec_layer = 8 * (C * C + C) + 2 * C * F + F + C + 6 * C;
    CHECK(total == V * C + 2 * enc_layer + dec_layer, "num_params %zu, expected %zu", total,
          V * C + 2 * enc_layer + dec_layer);
    qkv_tensor_info t;
    float *w = qkv_model_find(m, "encoder.layers.1.fc1.weight", &t);
    CHECK(w && t.ndim == 2 && t.shape[0] == 128 && t.shape[1] == 64, "fc1 shape");
    float bound = sqrtf(6.0f / (128 + 64)), mx = 0;
    for (size_t i = 0; w && i < t.size; i++)
        mx = fmaxf(mx, fabsf(w[i]));
    CHECK(mx <= bound && mx > 0.9f * bound, "Xavier bound %g, max |w| %g", (double)bound, (double)mx);
    float *lnw = qkv_model_find(m, "decoder.layers.0.encoder_attn_layer_norm.weight", NULL);
    float *bias = qkv_model_find(m, "decoder.layers.0.encoder_attn.v_proj.bias", NULL);
    CHECK(lnw && lnw[0] == 1.0f && lnw[63] == 1.0f, "layer-norm weights not ones");
    CHECK(bias && bias[0] == 0.0f && bias[63] == 0.0f, "biases not zero");
    float *e = qkv_model_find(m, "model.shared.weight", &t);
    double sq = 0;
    for (size_t i = 0; e && i < t.size; i++)
        sq += (double)e[i] * e[i];
    double sd = sqrt(sq / t.size);
    CHECK(fabs(sd - 0.125) < 0.01, "embedding std %g, expected 1/sqrt(64) = 0.125", sd);
    CHECK(qkv_model_find(m, "encoder.layers.2.fc1.weight", NULL) == NULL && strstr(qkv_last_error(), "no parameter"),
          "lookup of a missing name: '%s'", qkv_last_error());
    CHECK(qkv_model_tensor(m, qkv_model_num_tensors(m), &t) == QKV_ERR_ARG, "tensor index past the end accepted");
    CHECK(qkv_model_tensor(m, -1, &t) == QKV_ERR_ARG, "negative tensor index accepted");
    /* the same seed gives the same parameters */
    qkv_model *m2 = NULL;
    CHECK(qkv_model_new(&c, 5, &m2) == QKV_OK, "%s", qkv_last_error());
    CHECK(m2 && !memcmp(qkv_model_params(m), qkv_model_params(m2), total * sizeof(float)), "seed 5 twice differs");
    qkv_model_free(m2);
    qkv_model_free(m);
}


static void test_bad_batches(void)
{
    golden g;
    if (!golden_load(&g, cases[0])) {
        golden_free(&g);
        return;
    }
    model_forward_options o = model_default_forward_options();
    int keep = g.src[1];
    g.src[1] = 40; /* src vocabulary is 40 */
    CHECK(model_forward(g.s, &g.batch, &o, NULL) == QKV_ERR_ARG && strstr(qkv_last_error(), "src[0][1]"),
          "out-of-vocabulary source id: '%s'", qkv_last_error());
    g.src[1] = keep;
    g.src_len[2] = g.S + 1;
    CHECK(model_forward(g.s, &g.batch, &o, NULL) == QKV_ERR_ARG && strstr(qkv_last_error(), "length"),
          "src_len > S: '%s'", qkv_last_error());
    g.src_len[2] = 5;
    g.labels[1 * g.T + g.T - 1] = 5; /* row 1 has tgt_len 3 */
    CHECK(model_forward(g.s, &g.batch, &o, NULL) == QKV_ERR_ARG && strstr(qkv_last_error(), "beyond tgt_len"),
          "label on a padded position: '%s'", qkv_last_error());
    g.labels[1 * g.T + g.T - 1] = qkv_model_get_config(g.m)->pad_id;
    model_batch big = g.batch;
    big.B = g.B + 2;
    CHECK(model_forward(g.s, &big, &o, NULL) == QKV_ERR_ARG, "batch larger than the state accepted");
    model_state *s2 = NULL;
    CHECK(model_state_new(g.m, 2, 33, 4, 1, &s2) == QKV_ERR_ARG && strstr(qkv_last_error(), "max_positions"),
          "S beyond max_positions 32: '%s'", qkv_last_error());
    model_state_free(s2);
    model_state *s3 = NULL;
    CHECK(model_state_new(g.m, 3, 7, 6, 0, &s3) == QKV_OK, "%s", qkv_last_error());
    if (s3) {
        CHECK(model_forward(s3, &g.batch, &o, NULL) == QKV_OK, "inference state: %s", qkv_last_error());
        CHECK(model_backward(s3) == QKV_ERR_ARG, "backward without grads accepted");
    }
    model_state_free(s3);
    golden_free(&g);
}


static const test_case tests[] = {
    TEST(test_golden_post_relu_sin),
    TEST(test_golden_pre_gelu_learned_untied_bias),
    TEST(test_golden_pre_swish_shared_tied),
    TEST(test_golden_post_silu_final_norm_bias),
    TEST(test_golden_post_gelu_untied),
    TEST(test_golden_marian_hf),
    TEST(test_dropout_gradients),
    TEST(test_gradient_accumulation),
    TEST(test_empty_rows),
    TEST(test_tiny_shapes),
    TEST(test_init_and_table),
    TEST(test_bad_batches),
};

int main(int argc, char **argv) { return test_main(argc, argv, tests, TEST_COUNT(tests)); }
