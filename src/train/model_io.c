/* Model files: a qkv checkpoint reduced to what translation needs
 * (config, vocabularies, params), loading any checkpoint's model, and
 * averaging several. The container format is train/checkpoint.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/status.h"
#include "model/model.h"
#include "train/checkpoint.h"
#include "train/model_io.h"

int ckpt_add_vocab_sections(ckpt_section *sec, int n, const qkv_vocab_blobs *vocab)
{
    if (vocab && vocab->src) {
        sec[n++] = (ckpt_section){"src_vocab", (void *)vocab->src, vocab->src_len};
        if (vocab->tgt)
            sec[n++] = (ckpt_section){"tgt_vocab", (void *)vocab->tgt, vocab->tgt_len};
    }
    return n;
}

qkv_status qkv_checkpoint_save_model(const char *path, const qkv_model *m, const qkv_vocab_blobs *vocab)
{
    char *cfg;
    QKV_TRY(qkv_config_to_json(qkv_model_get_config(m), &cfg));
    ckpt_section sec[4];
    int n = 0;
    sec[n++] = (ckpt_section){"config", cfg, strlen(cfg)};
    n = ckpt_add_vocab_sections(sec, n, vocab);
    sec[n++] = (ckpt_section){"params", m->params, m->num_params * sizeof(float)};
    qkv_status s = ckpt_write(path, sec, n);
    free(cfg);
    return s;
}

static qkv_status load_model(const char *path, int readonly, qkv_model **model, qkv_vocab_blobs *vocab,
                             void **file_handle);

qkv_status qkv_checkpoint_load_model(const char *path, qkv_model **model, qkv_vocab_blobs *vocab,
                                     void **file_handle)
{
    return load_model(path, 0, model, vocab, file_handle);
}

qkv_status qkv_checkpoint_load_model_readonly(const char *path, qkv_model **model, qkv_vocab_blobs *vocab,
                                              void **file_handle)
{
    return load_model(path, 1, model, vocab, file_handle);
}

/* The parameters of a read-only model from the mapped file f, whose params
 * section ps starts on a page: a buffer of their own (anonymous pages) that
 * holds copies of the small tensors, with the whole pages inside each
 * product weight moved there from the file's mapping (mremap), so those stay
 * clean file pages: out of memory until read, and back out after
 * model_release_params. Each product weight is a mapping of its own, so
 * reading a bias next to it never brings in the file's large folio around
 * it. Everything is read-only afterwards. */
typedef struct {
    size_t a, b;
} page_range;

static int by_start(const void *x, const void *y)
{
    size_t a = ((const page_range *)x)->a, b = ((const page_range *)y)->a;
    return (a > b) - (a < b);
}

static qkv_status map_params(qkv_model *m, const ckpt_file *f, const ckpt_section *ps)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), len = (ps->nbytes + pg - 1) / pg * pg;
    char *A = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int n = model_decoder_product_count(m);
    model_product_tensor *pt = malloc((size_t)n * sizeof *pt);
    page_range *r = malloc((size_t)n * sizeof *r); /* whole pages [a, b) of each product weight, in buffer order */
    if (A == MAP_FAILED || !pt || !r) {
        if (A != MAP_FAILED)
            munmap(A, len);
        free(pt);
        free(r);
        return qkv_fail(QKV_ERR_NOMEM, "out of memory for %zu parameter bytes", ps->nbytes);
    }
    model_decoder_product_tensors(m, pt);
    int nr = 0;
    for (int i = 0; i < n; i++) {
        size_t x = pt[i].offset * sizeof(float), y = x + (size_t)pt[i].rows * pt[i].cols * sizeof(float);
        size_t a = (x + pg - 1) / pg * pg, b = y / pg * pg;
        if (b > a)
            r[nr++] = (page_range){a, b};
    }
    qsort(r, (size_t)nr, sizeof *r, by_start);
    const char *src = ps->data;
    size_t at = 0;
    for (int i = 0; i <= nr; i++) {
        size_t a = i < nr ? r[i].a : ps->nbytes, b = i < nr ? r[i].b : ps->nbytes;
        if (a < at) /* distinct tensors never overlap; this keeps the walk monotonic if a list ever did */
            a = at;
        if (a > at)
            ckpt_copy(f, A + at, src + at, a - at);
        if (b > a) {
            if (mremap((void *)(src + a), b - a, b - a, MREMAP_MAYMOVE | MREMAP_FIXED, A + a) != MAP_FAILED) {
                /* the hole left in the file's mapping is held until ckpt_free
                 * unmaps it all: else a later mmap (a large malloc) could land
                 * there and be unmapped with it */
                mmap((void *)(src + a), b - a, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1,
                     0);
            } else {
                ckpt_copy(f, A + a, src + a, b - a); /* not moved: copied */
            }
        }
        if (b > at)
            at = b;
    }
    free(pt);
    free(r);
    mprotect(A, len, PROT_READ);
    model_adopt_mapping(m, A, len, (const float *)A);
    return QKV_OK;
}

static qkv_status load_model(const char *path, int readonly, qkv_model **model, qkv_vocab_blobs *vocab,
                             void **file_handle)
{
    *model = NULL;
    *file_handle = NULL;
    memset(vocab, 0, sizeof *vocab);
    ckpt_file *f = calloc(1, sizeof *f);
    if (!f)
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    qkv_status s = ckpt_read(path, f);
    if (s != QKV_OK) {
        free(f);
        return s;
    }
    const ckpt_section *cs = ckpt_find(f, "config"), *ps = ckpt_find(f, "params"), *qs = ckpt_find(f, "quant");
    if (!cs || (!ps && !qs)) {
        s = qkv_fail(QKV_ERR_FORMAT, "%s: checkpoint lacks the '%s' section", path, cs ? "params" : "config");
        goto fail;
    }
    char *json = malloc(cs->nbytes + 1);
    if (!json) {
        s = qkv_fail(QKV_ERR_NOMEM, "out of memory");
        goto fail;
    }
    memcpy(json, cs->data, cs->nbytes);
    json[cs->nbytes] = '\0';
    qkv_model_config cfg;
    s = qkv_config_from_json(json, &cfg);
    free(json);
    if (s != QKV_OK) {
        qkv_fail_context(s, "%s: section 'config'", path);
        goto fail;
    }
    /* read-only, from a mapped file whose float32 parameters lie on a page
     * boundary (written with the "pad" section): the product weights stay
     * file pages (map_params); otherwise everything is copied (or
     * dequantized) */
    int in_place = readonly && !qs && f->map_len && ((uintptr_t)ps->data % CKPT_PARAMS_ALIGN) == 0;
    if ((s = qs ? qkv_model_new(&cfg, 0, model)
                : model_new_for_load(&cfg, in_place ? MODEL_PARAMS_NONE : MODEL_PARAMS_UNINIT, model)) != QKV_OK)
        goto fail;
    size_t want = qkv_model_num_params(*model) * sizeof(float);
    if (qs) {
        if ((s = model_io_fill_quantized(path, f, *model)) != QKV_OK)
            goto fail;
    } else if (ps->nbytes != want) {
        s = qkv_fail(QKV_ERR_FORMAT, "%s: section 'params' has %zu bytes, the config needs %zu", path, ps->nbytes,
                     want);
        goto fail;
    } else if (in_place) {
        if ((s = map_params(*model, f, ps)) != QKV_OK)
            goto fail;
    } else {
        ckpt_section_copy(f, qkv_model_params(*model), ps);
    }
    const ckpt_section *sv = ckpt_find(f, "src_vocab"), *tv = ckpt_find(f, "tgt_vocab");
    if (sv) {
        vocab->src = sv->data;
        vocab->src_len = sv->nbytes;
    }
    if (tv) {
        vocab->tgt = tv->data;
        vocab->tgt_len = tv->nbytes;
    }
    *file_handle = f;
    return QKV_OK;
fail:
    qkv_model_free(*model);
    *model = NULL;
    ckpt_free(f);
    free(f);
    return s;
}

void qkv_checkpoint_release(void *file_handle)
{
    if (file_handle) {
        ckpt_free(file_handle);
        free(file_handle);
    }
}

qkv_status qkv_checkpoint_average(const char *const *paths, int n, const char *out_path)
{
    if (n < 1)
        return qkv_fail(QKV_ERR_ARG, "average: no checkpoints given");
    qkv_model *acc = NULL;
    qkv_vocab_blobs vocab;
    void *first = NULL;
    QKV_TRY(qkv_checkpoint_load_model(paths[0], &acc, &vocab, &first));
    size_t np = qkv_model_num_params(acc);
    double *sum = calloc(np, sizeof *sum);
    qkv_status s = sum ? QKV_OK : qkv_fail(QKV_ERR_NOMEM, "out of memory");
    float *p = qkv_model_params(acc);
    for (size_t i = 0; sum && i < np; i++)
        sum[i] = p[i];
    for (int k = 1; k < n && s == QKV_OK; k++) {
        qkv_model *m = NULL;
        qkv_vocab_blobs vb;
        void *h = NULL;
        if ((s = qkv_checkpoint_load_model(paths[k], &m, &vb, &h)) != QKV_OK)
            break;
        if (qkv_model_num_params(m) != np) {
            s = qkv_fail(QKV_ERR_ARG, "average: %s has %zu parameters, %s has %zu", paths[k],
                         qkv_model_num_params(m), paths[0], np);
        } else {
            const float *q = qkv_model_params(m);
            for (size_t i = 0; i < np; i++)
                sum[i] += q[i];
        }
        qkv_model_free(m);
        qkv_checkpoint_release(h);
    }
    if (s == QKV_OK) {
        for (size_t i = 0; i < np; i++)
            p[i] = (float)(sum[i] / n);
        s = qkv_checkpoint_save_model(out_path, acc, &vocab);
    }
    free(sum);
    qkv_model_free(acc);
    qkv_checkpoint_release(first);
    return s;
}
