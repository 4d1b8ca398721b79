/* Quantized model files (qkv quantize): the decoder's product weights
 * stored in the compute type they run in, so that the file is smaller and
 * loads without re-quantizing.
 *
 * Sections, beside "config" and the vocabularies (keep in sync with
 * train/checkpoint.h and cli/cmd_info.c):
 *   "quant"        JSON: {"compute_type": "int8" | "bfloat16",
 *                   "tensors": n, "scheme": "..."}
 *   "qweights"     for each of model_decoder_product_tensors' n tensors, in
 *                  its order: int8: q [rows, cols] (int8, row-major) then
 *                  scale [rows] (float32, max|w| / 127); bfloat16: w [rows,
 *                  cols] (uint16, round to nearest even), fp32_too tensors
 *                  left out (their rounding at load is exact)
 *   "params_rest"  float32: the parameter buffer without the ranges of
 *                  those tensors (except fp32_too ones), in offset order
 * The loader rebuilds the float32 buffer (dequantized tensors in their
 * ranges) for the float32 paths (scoring in float32, attention maps,
 * export), and hands the int8 rows to the decoder's packing as they are. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "kernels/quant.h"
#include "model/model.h"
#include "train/model_io.h"

/* The product tensors of m, and which of them leave params_rest: sorted by
 * offset into cut[] (ncut of them). */
static model_product_tensor *product_list(const qkv_model *m, int *n, model_product_tensor **cut, int *ncut)
{
    *n = model_decoder_product_count(m);
    model_product_tensor *t = malloc((size_t)*n * sizeof *t), *c = malloc((size_t)*n * sizeof *c);
    if (!t || !c) {
        free(t);
        free(c);
        return NULL;
    }
    model_decoder_product_tensors(m, t);
    int k = 0;
    for (int i = 0; i < *n; i++) {
        if (t[i].fp32_too)
            continue;
        int j = k++;
        for (; j > 0 && c[j - 1].offset > t[i].offset; j--)
            c[j] = c[j - 1];
        c[j] = t[i];
    }
    *cut = c;
    *ncut = k;
    return t;
}

static size_t rest_floats(const qkv_model *m, const model_product_tensor *cut, int ncut)
{
    size_t n = m->num_params;
    for (int i = 0; i < ncut; i++)
        n -= (size_t)cut[i].rows * cut[i].cols;
    return n;
}

/* Whether tensor t is in "qweights": every one for int8 (packed from the
 * stored rows); for bf16 all but the fp32_too ones, whose bf16 rounding at
 * load gives the same bits and would only double them in the file. */
static int stored(const model_product_tensor *t, int int8) { return int8 || !t->fp32_too; }

/* params_rest and the parameter buffer: the ranges outside the cut
 * tensors, in order, copied into to_rest (saving) or from from_rest into
 * m's parameters (loading); the other pointer is NULL. */
static void rest_copy(const qkv_model *m, const model_product_tensor *cut, int ncut, float *to_rest,
                      const float *from_rest)
{
    size_t at = 0, r = 0;
    for (int i = 0; i <= ncut; i++) {
        size_t end = i < ncut ? cut[i].offset : m->num_params;
        if (to_rest)
            memcpy(to_rest + r, m->params + at, (end - at) * sizeof(float));
        else
            memcpy(m->params + at, from_rest + r, (end - at) * sizeof(float));
        r += end - at;
        if (i < ncut)
            at = end + (size_t)cut[i].rows * cut[i].cols;
    }
}

static size_t qweights_bytes(const model_product_tensor *t, int n, int int8)
{
    size_t b = 0;
    for (int i = 0; i < n; i++)
        b += !stored(&t[i], int8) ? 0
           : int8 ? (size_t)t[i].rows * t[i].cols + (size_t)t[i].rows * sizeof(float)
                  : (size_t)t[i].rows * t[i].cols * sizeof(uint16_t);
    return b;
}

qkv_status qkv_checkpoint_save_quantized(const char *path, const qkv_model *m, const qkv_vocab_blobs *vocab,
                                         const char *compute_type)
{
    int int8 = !strcmp(compute_type, "int8");
    if (!int8 && strcmp(compute_type, "bfloat16"))
        return qkv_fail(QKV_ERR_ARG, "quantize: compute type \"%s\", expected int8 or bfloat16", compute_type);
    int n, ncut;
    model_product_tensor *cut, *t = product_list(m, &n, &cut, &ncut);
    if (!t)
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    size_t nq = qweights_bytes(t, n, int8), nr = rest_floats(m, cut, ncut);
    char *qw = malloc(nq ? nq : 1), *cfg = NULL, *qjson = NULL;
    float *rest = malloc((nr ? nr : 1) * sizeof(float));
    qkv_status s = qw && rest ? QKV_OK : qkv_fail(QKV_ERR_NOMEM, "out of memory");
    char *w = qw;
    for (int i = 0; s == QKV_OK && i < n; i++) {
        if (!stored(&t[i], int8))
            continue;
        const float *src = m->params + t[i].offset;
        size_t e = (size_t)t[i].rows * t[i].cols;
        if (int8) {
            float *scale = malloc((size_t)t[i].rows * sizeof(float));
            if (!scale) {
                s = qkv_fail(QKV_ERR_NOMEM, "out of memory");
                break;
            }
            quantize_rows_s8((int8_t *)w, scale, src, t[i].rows, t[i].cols, t[i].cols);
            memcpy(w + e, scale, (size_t)t[i].rows * sizeof(float));
            free(scale);
            w += e + (size_t)t[i].rows * sizeof(float);
        } else {
            uint16_t *b = malloc(e * sizeof(uint16_t));
            if (!b) {
                s = qkv_fail(QKV_ERR_NOMEM, "out of memory");
                break;
            }
            float_to_bf16(b, src, e);
            memcpy(w, b, e * sizeof(uint16_t));
            free(b);
            w += e * sizeof(uint16_t);
        }
    }
    if (s == QKV_OK)
        rest_copy(m, cut, ncut, rest, NULL);
    if (s == QKV_OK)
        s = qkv_config_to_json(qkv_model_get_config(m), &cfg);
    cJSON *j = s == QKV_OK ? cJSON_CreateObject() : NULL;
    if (j) {
        cJSON_AddStringToObject(j, "compute_type", int8 ? "int8" : "bfloat16");
        cJSON_AddNumberToObject(j, "tensors", n);
        cJSON_AddStringToObject(j, "scheme", int8 ? "int8 per output row, symmetric, scale max|w|/127"
                                                  : "bfloat16, round to nearest even");
        qjson = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
    }
    if (s == QKV_OK && !qjson)
        s = qkv_fail(QKV_ERR_NOMEM, "out of memory");
    if (s == QKV_OK) {
        ckpt_section sec[6];
        int k = 0;
        sec[k++] = (ckpt_section){"config", cfg, strlen(cfg)};
        k = ckpt_add_vocab_sections(sec, k, vocab);
        sec[k++] = (ckpt_section){"quant", qjson, strlen(qjson)};
        sec[k++] = (ckpt_section){"qweights", qw, nq};
        sec[k++] = (ckpt_section){"params_rest", rest, nr * sizeof(float)};
        s = ckpt_write(path, sec, k);
    }
    free(qjson);
    free(cfg);
    free(qw);
    free(rest);
    free(t);
    free(cut);
    return s;
}

/* The compute type of a "quant" section; NULL when it is not one. */
static const char *quant_type(const ckpt_section *qs, char *buf, size_t n)
{
    cJSON *j = cJSON_ParseWithLength(qs->data, qs->nbytes);
    const cJSON *ct = j ? cJSON_GetObjectItemCaseSensitive(j, "compute_type") : NULL;
    const char *r = NULL;
    if (cJSON_IsString(ct) && (!strcmp(ct->valuestring, "int8") || !strcmp(ct->valuestring, "bfloat16"))) {
        snprintf(buf, n, "%s", ct->valuestring);
        r = buf;
    }
    cJSON_Delete(j);
    return r;
}

qkv_status model_io_fill_quantized(const char *path, const ckpt_file *f, qkv_model *m)
{
    const ckpt_section *qs = ckpt_find(f, "quant"), *ws = ckpt_find(f, "qweights"), *rs = ckpt_find(f, "params_rest");
    char type[16];
    if (!quant_type(qs, type, sizeof type))
        return qkv_fail(QKV_ERR_FORMAT, "%s: section 'quant': expected JSON with \"compute_type\": \"int8\" or "
                                        "\"bfloat16\"",
                        path);
    if (!ws || !rs)
        return qkv_fail(QKV_ERR_FORMAT, "%s: quantized checkpoint lacks the '%s' section", path,
                        ws ? "params_rest" : "qweights");
    int int8 = !strcmp(type, "int8"), n, ncut;
    model_product_tensor *cut, *t = product_list(m, &n, &cut, &ncut);
    if (!t)
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    size_t nq = qweights_bytes(t, n, int8), nr = rest_floats(m, cut, ncut);
    qkv_status s = QKV_OK;
    if (ws->nbytes != nq)
        s = qkv_fail(QKV_ERR_FORMAT, "%s: section 'qweights' has %zu bytes, the config needs %zu (%s)", path,
                     ws->nbytes, nq, type);
    else if (rs->nbytes != nr * sizeof(float))
        s = qkv_fail(QKV_ERR_FORMAT, "%s: section 'params_rest' has %zu bytes, the config needs %zu", path,
                     rs->nbytes, nr * sizeof(float));
    if (s == QKV_OK)
        rest_copy(m, cut, ncut, NULL, rs->data);
    /* the dequantized tensors in their ranges (fp32_too ones keep their float32 copy) */
    const char *w = ws->data;
    for (int i = 0; s == QKV_OK && i < n; i++) {
        if (!stored(&t[i], int8))
            continue;
        size_t e = (size_t)t[i].rows * t[i].cols;
        float *dst = m->params + t[i].offset;
        if (t[i].fp32_too) { /* int8 only (bf16 does not store them): its float32 copy came with params_rest */
            w += e + (size_t)t[i].rows * sizeof(float);
            continue;
        }
        if (int8) {
            float *scale = malloc((size_t)t[i].rows * sizeof(float));
            if (!scale) {
                s = qkv_fail(QKV_ERR_NOMEM, "out of memory");
                break;
            }
            memcpy(scale, w + e, (size_t)t[i].rows * sizeof(float));
            dequantize_rows_s8(dst, (const int8_t *)w, scale, t[i].rows, t[i].cols, t[i].cols);
            free(scale);
            w += e + (size_t)t[i].rows * sizeof(float);
        } else {
            uint16_t *b = malloc(e * sizeof(uint16_t));
            if (!b) {
                s = qkv_fail(QKV_ERR_NOMEM, "out of memory");
                break;
            }
            memcpy(b, w, e * sizeof(uint16_t));
            bf16_to_float(dst, b, e);
            free(b);
            w += e * sizeof(uint16_t);
        }
    }
    free(t);
    free(cut);
    return s;
}

const char *qkv_checkpoint_compute_type(const void *file_handle)
{
    static const char *const names[] = {"int8", "bfloat16"};
    const ckpt_section *qs = file_handle ? ckpt_find(file_handle, "quant") : NULL;
    char buf[16];
    const char *t = qs ? quant_type(qs, buf, sizeof buf) : NULL;
    return !t ? "float32" : !strcmp(t, "int8") ? names[0] : names[1];
}

qkv_status qkv_checkpoint_i8_tensors(const void *file_handle, const qkv_model *m, model_i8_tensor **out,
                                     float **scales)
{
    *out = NULL;
    *scales = NULL;
    const ckpt_section *ws = ckpt_find(file_handle, "qweights");
    if (!ws || strcmp(qkv_checkpoint_compute_type(file_handle), "int8"))
        return QKV_OK;
    int n = model_decoder_product_count(m);
    model_product_tensor *t = malloc((size_t)n * sizeof *t);
    model_i8_tensor *v = malloc((size_t)n * sizeof *v);
    size_t rows = 0;
    if (t)
        model_decoder_product_tensors(m, t);
    for (int i = 0; t && i < n; i++)
        rows += (size_t)t[i].rows;
    float *sc = malloc((rows ? rows : 1) * sizeof(float)); /* aligned copies of the scales */
    if (!t || !v || !sc) {
        free(t);
        free(v);
        free(sc);
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    }
    const char *w = ws->data; /* sizes checked when the model loaded */
    float *s = sc;
    for (int i = 0; i < n; i++) {
        size_t e = (size_t)t[i].rows * t[i].cols;
        memcpy(s, w + e, (size_t)t[i].rows * sizeof(float));
        v[i] = (model_i8_tensor){(const int8_t *)w, s};
        s += t[i].rows;
        w += e + (size_t)t[i].rows * sizeof(float);
    }
    free(t);
    *out = v;
    *scales = sc;
    return QKV_OK;
}

qkv_status qkv_checkpoint_quantize(const char *in_path, const char *out_path, const char *compute_type)
{
    const char *r = NULL;
    if (qkv_compute_type_resolve(compute_type, &r) != QKV_OK || !strcmp(r, "float32") ||
        (strcmp(compute_type, "int8") && strcmp(compute_type, "bfloat16") && strcmp(compute_type, "int8_float32") &&
         strcmp(compute_type, "int8_bfloat16")))
        return qkv_fail(QKV_ERR_ARG, "quantize: --compute-type %s: expected int8 or bfloat16 (int8_float32 and "
                                     "int8_bfloat16 store int8)",
                        compute_type ? compute_type : "(none)");
    qkv_model *m = NULL;
    qkv_vocab_blobs vb;
    void *h = NULL;
    QKV_TRY(qkv_checkpoint_load_model(in_path, &m, &vb, &h));
    qkv_status s = qkv_checkpoint_save_quantized(out_path, m, &vb, r);
    qkv_model_free(m);
    qkv_checkpoint_release(h);
    return s;
}
