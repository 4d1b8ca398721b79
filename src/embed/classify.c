/* The classifier head on frozen embeddings (qkv_classifier_* in qkv.h).
 *
 * File layout (all integers little-endian):
 *
 *   offset  size          field
 *   0       8             magic "QKVCLF\\0\\0"
 *   8       4             u32 version (1)
 *   12      4             u32 dim
 *   16      4             u32 n_labels
 *   20      4             i32 pooling (qkv_pooling)
 *   24      4             i32 normalize (-1, 0, 1)
 *   28      4             i32 max_length
 *   32      4             u32 encoder_len
 *   36      encoder_len   the encoder's path
 *   ...     per label     u32 length, bytes
 *   ...     4*L*dim + 4*L f32 W [L, dim] then b [L]
 *   ...     8             u64 FNV-1a 64 of every byte before it
 *
 * Keep save and load in sync. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/io.h"
#include "base/rng.h"
#include "base/status.h"
#include "kernels/kernels.h"
#include "qkv.h"

#define CLF_MAGIC "QKVCLF\0\0"
#define CLF_VERSION 1u

struct qkv_classifier {
    qkv_embedder *enc;
    char *encoder_path;
    qkv_embed_options embed;
    int dim, n_labels;
    char **labels; /* [n_labels], sorted */
    float *params; /* W [L, dim] then b [L] */
};

qkv_classify_options qkv_classify_default_options(void)
{
    return (qkv_classify_options){.epochs = 30, .batch_size = 64, .lr = 1e-2f, .weight_decay = 1e-4f, .seed = 1,
                                  .embed = qkv_embed_default_options()};
}

void qkv_classifier_free(qkv_classifier *c)
{
    if (!c)
        return;
    qkv_embedder_free(c->enc);
    free(c->encoder_path);
    for (int i = 0; c->labels && i < c->n_labels; i++)
        free(c->labels[i]);
    free(c->labels);
    free(c->params);
    free(c);
}

int qkv_classifier_num_labels(const qkv_classifier *c) { return c->n_labels; }
const char *qkv_classifier_label(const qkv_classifier *c, int i)
{
    return i >= 0 && i < c->n_labels ? c->labels[i] : NULL;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int label_index(char *const *sorted, int n, const char *s)
{
    char *const *hit = bsearch(&s, sorted, (size_t)n, sizeof *sorted, cmp_str);
    return hit ? (int)(hit - sorted) : -1;
}

/* The sorted distinct strings of a (and b), malloc'ed copies. */
static qkv_status distinct(const char *const *a, int na, const char *const *b, int nb, char ***out, int *n_out)
{
    char **all = malloc(((size_t)na + nb + 1) * sizeof *all);
    if (!all)
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    for (int i = 0; i < na; i++)
        all[i] = (char *)a[i];
    for (int i = 0; i < nb; i++)
        all[na + i] = (char *)b[i];
    qsort(all, (size_t)na + nb, sizeof *all, cmp_str);
    int n = 0;
    for (int i = 0; i < na + nb; i++)
        if (!n || strcmp(all[n - 1], all[i]))
            all[n++] = all[i];
    for (int i = 0; i < n; i++)
        if (!(all[i] = strdup(all[i]))) {
            for (int j = 0; j < i; j++)
                free(all[j]);
            free(all);
            return qkv_fail(QKV_ERR_NOMEM, "out of memory");
        }
    *out = all;
    *n_out = n;
    return QKV_OK;
}

static float *embed_all(const qkv_embedder *e, const char *const *texts, int n, const qkv_embed_options *o)
{
    float *x = malloc(((size_t)n * qkv_embedder_dim(e) + 1) * sizeof *x);
    if (!x) {
        qkv_fail(QKV_ERR_NOMEM, "classify: out of memory for %d embeddings", n);
        return NULL;
    }
    if (qkv_embed(e, texts, n, o, x, NULL) != QKV_OK) {
        free(x);
        return NULL;
    }
    return x;
}

/* logits -> argmax accuracy over n rows of x with labels y */
static double accuracy_of(const float *params, const float *x, const int *y, int n, int dim, int L, float *logits)
{
    int right = 0;
    for (int i0 = 0; i0 < n; i0 += 256) {
        int m = n - i0 < 256 ? n - i0 : 256;
        linear_forward(logits, x + (size_t)i0 * dim, params, params + (size_t)L * dim, m, dim, L);
        for (int i = 0; i < m; i++) {
            const float *r = logits + (size_t)i * L;
            int best = 0;
            for (int l = 1; l < L; l++)
                best = r[l] > r[best] ? l : best;
            right += best == y[i0 + i];
        }
    }
    return n ? (double)right / n : 0;
}

qkv_status qkv_classifier_train(const char *encoder_path, const char *const *texts, const char *const *labels, int n,
                                const char *const *dev_texts, const char *const *dev_labels, int n_dev,
                                const qkv_classify_options *o, qkv_classifier **out)
{
    *out = NULL;
    qkv_classify_options opt = o ? *o : qkv_classify_default_options();
    if (n < 1)
        return qkv_fail(QKV_ERR_ARG, "classify: no training examples");
    if (opt.epochs < 1 || opt.batch_size < 1 || !(opt.lr > 0) || opt.weight_decay < 0)
        return qkv_fail(QKV_ERR_CONFIG, "classify: epochs %d, batch_size %d, lr %g, weight_decay %g: expected "
                        "epochs, batch size and lr > 0, decay >= 0", opt.epochs, opt.batch_size, (double)opt.lr,
                        (double)opt.weight_decay);
    qkv_classifier *c = calloc(1, sizeof *c);
    if (!c)
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    c->embed = opt.embed;
    c->embed.threads = 0;
    qkv_status s = qkv_embedder_load(encoder_path, &c->enc);
    if (s == QKV_OK && !(c->encoder_path = strdup(encoder_path)))
        s = qkv_fail(QKV_ERR_NOMEM, "out of memory");
    if (s == QKV_OK)
        s = distinct(labels, n, NULL, 0, &c->labels, &c->n_labels);
    if (s != QKV_OK)
        return qkv_classifier_free(c), s;
    if (c->n_labels < 2)
        return qkv_classifier_free(c), qkv_fail(QKV_ERR_ARG, "classify: the training set has only one label");
    int dim = c->dim = qkv_embedder_dim(c->enc), L = c->n_labels;
    size_t np = (size_t)L * dim + L;
    float *x = embed_all(c->enc, texts, n, &opt.embed);
    float *xd = n_dev > 0 && x ? embed_all(c->enc, dev_texts, n_dev, &opt.embed) : NULL;
    int *y = malloc((size_t)n * sizeof *y), *yd = malloc(((size_t)n_dev + 1) * sizeof *yd);
    int *order = malloc((size_t)n * sizeof *order), *yb = malloc((size_t)opt.batch_size * sizeof *yb);
    c->params = calloc(np, sizeof *c->params);
    float *best = malloc(np * sizeof *best), *grad = malloc(np * sizeof *grad), *m = calloc(np, sizeof *m),
          *v = calloc(np, sizeof *v);
    int B = opt.batch_size;
    float *xb = malloc((size_t)B * dim * sizeof *xb), *logits = malloc((size_t)256 * L * sizeof *logits),
          *probs = malloc((size_t)B * L * sizeof *probs), *loss = malloc((size_t)B * sizeof *loss),
          *dloss = malloc((size_t)B * sizeof *dloss);
    if (!x || (n_dev > 0 && !xd))
        s = qkv_fail_context(QKV_ERR_FORMAT, "classify: embedding the %s set", !x ? "training" : "dev");
    else if (!y || !yd || !order || !yb || !c->params || !best || !grad || !m || !v || !xb || !logits || !probs ||
             !loss || !dloss)
        s = qkv_fail(QKV_ERR_NOMEM, "classify: out of memory");
    for (int i = 0; s == QKV_OK && i < n; i++)
        y[i] = label_index(c->labels, L, labels[i]);
    for (int i = 0; s == QKV_OK && i < n_dev; i++)
        yd[i] = label_index(c->labels, L, dev_labels[i]); /* -1: a label training never saw, always wrong */
    if (s == QKV_OK) {
        qkv_rng rng;
        qkv_rng_seed(&rng, opt.seed);
        for (size_t i = 0; i < (size_t)L * dim; i++)
            c->params[i] = 0.01f * qkv_rng_normal(&rng);
        for (int i = 0; i < n; i++)
            order[i] = i;
        double best_acc = -1;
        int step = 0;
        for (int ep = 1; ep <= opt.epochs; ep++) {
            for (int i = n - 1; i > 0; i--) { /* Fisher-Yates */
                int j = (int)qkv_rng_below(&rng, (uint64_t)i + 1), t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
            double sum_loss = 0;
            for (int i0 = 0; i0 < n; i0 += B) {
                int nb = n - i0 < B ? n - i0 : B;
                for (int b = 0; b < nb; b++) {
                    memcpy(xb + (size_t)b * dim, x + (size_t)order[i0 + b] * dim, (size_t)dim * sizeof *xb);
                    yb[b] = y[order[i0 + b]];
                    dloss[b] = 1.0f / nb;
                }
                linear_forward(probs, xb, c->params, c->params + (size_t)L * dim, nb, dim, L);
                crossentropy_forward(loss, probs, probs, yb, nb, L, 0.0f, -1);
                for (int b = 0; b < nb; b++)
                    sum_loss += loss[b];
                memset(grad, 0, np * sizeof *grad);
                crossentropy_backward(probs, probs, yb, dloss, nb, L, 0.0f, -1);
                linear_backward(NULL, grad, grad + (size_t)L * dim, probs, xb, c->params, nb, dim, L);
                step++;
                adamw_update(c->params, m, v, grad, (size_t)L * dim, opt.lr, 0.9f, 0.999f, 1e-8f, opt.weight_decay,
                             step);
                adamw_update(c->params + (size_t)L * dim, m + (size_t)L * dim, v + (size_t)L * dim,
                             grad + (size_t)L * dim, (size_t)L, opt.lr, 0.9f, 0.999f, 1e-8f, 0.0f, step);
            }
            double acc = n_dev > 0 ? accuracy_of(c->params, xd, yd, n_dev, dim, L, logits)
                                   : accuracy_of(c->params, x, y, n, dim, L, logits);
            if (acc > best_acc || n_dev == 0) {
                best_acc = acc;
                memcpy(best, c->params, np * sizeof *best);
            }
            if (opt.progress) {
                char line[160];
                snprintf(line, sizeof line, "epoch %d: train loss %.4f, %s accuracy %.4f", ep, sum_loss / n,
                         n_dev > 0 ? "dev" : "train", acc);
                opt.progress(opt.progress_ctx, line);
            }
        }
        memcpy(c->params, best, np * sizeof *best);
    }
    free(x), free(xd), free(y), free(yd), free(order), free(yb), free(best), free(grad), free(m), free(v);
    free(xb), free(logits), free(probs), free(loss), free(dloss);
    if (s != QKV_OK)
        return qkv_classifier_free(c), s;
    *out = c;
    return QKV_OK;
}

qkv_status qkv_classifier_predict(const qkv_classifier *c, const char *const *texts, int n, int *label, float *prob,
                                  float *probs)
{
    int L = c->n_labels, dim = c->dim;
    float *x = embed_all(c->enc, texts, n, &c->embed);
    float *p = malloc(((size_t)n * L + 1) * sizeof *p);
    if (!x || !p) {
        free(x), free(p);
        return x ? qkv_fail(QKV_ERR_NOMEM, "classify: out of memory") : QKV_ERR_FORMAT;
    }
    linear_forward(p, x, c->params, c->params + (size_t)L * dim, n, dim, L);
    softmax_forward(p, p, n, L);
    for (int i = 0; i < n; i++) {
        const float *r = p + (size_t)i * L;
        int best = 0;
        for (int l = 1; l < L; l++)
            best = r[l] > r[best] ? l : best;
        label[i] = best;
        if (prob)
            prob[i] = r[best];
    }
    if (probs)
        memcpy(probs, p, (size_t)n * L * sizeof *p);
    free(x), free(p);
    return QKV_OK;
}

void qkv_classify_scores(const char *const *gold, const char *const *pred, int n, double *accuracy,
                         double *macro_f1)
{
    char **labels = NULL;
    int L = 0, right = 0;
    *accuracy = *macro_f1 = 0;
    if (n < 1 || distinct(gold, n, pred, n, &labels, &L) != QKV_OK)
        return;
    long *tp = calloc((size_t)L, sizeof *tp), *fp = calloc((size_t)L, sizeof *fp), *fn = calloc((size_t)L, sizeof *fn);
    if (tp && fp && fn) {
        for (int i = 0; i < n; i++) {
            int g = label_index(labels, L, gold[i]), p = label_index(labels, L, pred[i]);
            if (g == p) {
                right++;
                tp[g]++;
            } else {
                fp[p]++;
                fn[g]++;
            }
        }
        double f = 0;
        for (int l = 0; l < L; l++) {
            long d = 2 * tp[l] + fp[l] + fn[l];
            f += d ? 2.0 * tp[l] / d : 0;
        }
        *accuracy = (double)right / n;
        *macro_f1 = f / L;
    }
    free(tp), free(fp), free(fn);
    for (int i = 0; i < L; i++)
        free(labels[i]);
    free(labels);
}

/* ---- the file ---------------------------------------------------------------- */

typedef struct {
    unsigned char *p;
    size_t n, cap;
    int failed;
} wbuf;

static void wb_put(wbuf *b, const void *d, size_t n)
{
    if (b->failed)
        return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n)
            cap *= 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q) {
            b->failed = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void wb_u32(wbuf *b, uint32_t v)
{
    unsigned char q[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    wb_put(b, q, 4);
}

static uint64_t fnv(const unsigned char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

qkv_status qkv_classifier_save(const qkv_classifier *c, const char *path)
{
    wbuf b = {0};
    wb_put(&b, CLF_MAGIC, 8);
    wb_u32(&b, CLF_VERSION);
    wb_u32(&b, (uint32_t)c->dim);
    wb_u32(&b, (uint32_t)c->n_labels);
    wb_u32(&b, (uint32_t)c->embed.pooling);
    wb_u32(&b, (uint32_t)c->embed.normalize);
    wb_u32(&b, (uint32_t)c->embed.max_length);
    wb_u32(&b, (uint32_t)strlen(c->encoder_path));
    wb_put(&b, c->encoder_path, strlen(c->encoder_path));
    for (int i = 0; i < c->n_labels; i++) {
        wb_u32(&b, (uint32_t)strlen(c->labels[i]));
        wb_put(&b, c->labels[i], strlen(c->labels[i]));
    }
    size_t np = (size_t)c->n_labels * c->dim + c->n_labels;
    for (size_t i = 0; i < np; i++) {
        uint32_t bits;
        memcpy(&bits, c->params + i, 4);
        wb_u32(&b, bits);
    }
    uint64_t h = fnv(b.p, b.n);
    wb_u32(&b, (uint32_t)h);
    wb_u32(&b, (uint32_t)(h >> 32));
    qkv_status s = b.failed ? qkv_fail(QKV_ERR_NOMEM, "%s: out of memory", path) : qkv_write_file(path, b.p, b.n);
    free(b.p);
    return s;
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

qkv_status qkv_classifier_load(const char *path, qkv_classifier **out)
{
    *out = NULL;
    char *data;
    size_t len;
    QKV_TRY(qkv_read_file(path, &data, &len));
    const unsigned char *d = (const unsigned char *)data;
    qkv_status s = QKV_OK;
    if (len < 44 || memcmp(d, CLF_MAGIC, 8))
        s = qkv_fail(QKV_ERR_FORMAT, "%s: not a qkv classifier (no \"QKVCLF\" magic)", path);
    else if (rd32(d + 8) != CLF_VERSION)
        s = qkv_fail(QKV_ERR_FORMAT, "%s: classifier version %u, this qkv reads version %u", path, rd32(d + 8),
                     CLF_VERSION);
    else if (fnv(d, len - 8) != ((uint64_t)rd32(d + len - 8) | (uint64_t)rd32(d + len - 4) << 32))
        s = qkv_fail(QKV_ERR_FORMAT, "%s: checksum mismatch (truncated or damaged)", path);
    qkv_classifier *c = s == QKV_OK ? calloc(1, sizeof *c) : NULL;
    if (s == QKV_OK && !c)
        s = qkv_fail(QKV_ERR_NOMEM, "out of memory");
    size_t at = 36, end = len - 8;
    if (s == QKV_OK) {
        c->dim = (int)rd32(d + 12);
        c->n_labels = (int)rd32(d + 16);
        c->embed = qkv_embed_default_options();
        c->embed.pooling = (qkv_pooling)(int32_t)rd32(d + 20);
        c->embed.normalize = (int32_t)rd32(d + 24);
        c->embed.max_length = (int32_t)rd32(d + 28);
        uint32_t el = rd32(d + 32);
        if (c->dim < 1 || c->n_labels < 2 || c->n_labels > 1000000 || el > end - at)
            s = qkv_fail(QKV_ERR_FORMAT, "%s: header fields out of range", path);
        else if (!(c->encoder_path = strndup((const char *)d + at, el)) ||
                 !(c->labels = calloc((size_t)c->n_labels, sizeof *c->labels)))
            s = qkv_fail(QKV_ERR_NOMEM, "out of memory");
        at += el;
    }
    for (int i = 0; s == QKV_OK && i < c->n_labels; i++) {
        uint32_t ll = at + 4 <= end ? rd32(d + at) : UINT32_MAX;
        if (ll > end - at - 4)
            s = qkv_fail(QKV_ERR_FORMAT, "%s: label %d runs past the end", path, i + 1);
        else if (!(c->labels[i] = strndup((const char *)d + at + 4, ll)))
            s = qkv_fail(QKV_ERR_NOMEM, "out of memory");
        at += 4 + (size_t)ll;
    }
    size_t np = s == QKV_OK ? (size_t)c->n_labels * c->dim + c->n_labels : 0;
    if (s == QKV_OK && end - at != 4 * np)
        s = qkv_fail(QKV_ERR_FORMAT, "%s: %zu bytes of weights, want %zu", path, end - at, 4 * np);
    if (s == QKV_OK && !(c->params = malloc(np * sizeof *c->params)))
        s = qkv_fail(QKV_ERR_NOMEM, "out of memory");
    for (size_t i = 0; s == QKV_OK && i < np; i++) {
        uint32_t bits = rd32(d + at + 4 * i);
        memcpy(c->params + i, &bits, 4);
    }
    if (s == QKV_OK)
        s = qkv_embedder_load(c->encoder_path, &c->enc);
    if (s == QKV_OK && qkv_embedder_dim(c->enc) != c->dim)
        s = qkv_fail(QKV_ERR_FORMAT, "%s: trained on %d-dimensional embeddings, but %s gives %d", path, c->dim,
                     c->encoder_path, qkv_embedder_dim(c->enc));
    free(data);
    if (s != QKV_OK) {
        qkv_classifier_free(c);
        return s == QKV_OK ? QKV_ERR_FORMAT : s;
    }
    *out = c;
    return QKV_OK;
}
