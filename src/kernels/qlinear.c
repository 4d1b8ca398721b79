/* Typed packed weights for the few-row products (qlinear.h). */
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "kernels/isa.h"
#include "qkv.h"

#include "kernels/linear_packed.h"
#include "kernels/qlinear.h"
#include "kernels/quant.h"

static size_t up64(size_t n) { return (n + 63) & ~(size_t)63; }

size_t qlinear_bytes(int C, int OC, qlinear_type type)
{
    switch (type) {
    case QLIN_INT8:
        return up64(linear_i8_weight_bytes(C, OC)) + 2 * up64(linear_i8_panel_floats(OC) * 4);
    case QLIN_BF16:
        return up64(linear_bf16_weight_elems(C, OC) * 2);
    default:
        return up64(linear_packed_floats(C, OC) * sizeof(float));
    }
}

size_t qlinear_held_bytes(const qlinear *q) { return qlinear_bytes(q->C, q->OC, q->type) + linear_i8_onednn_weight_bytes(q->wd); }

static int alloc(qlinear *q, int C, int OC, qlinear_type type)
{
    *q = (qlinear){.type = type, .C = C, .OC = OC};
    size_t n = qlinear_bytes(C, OC, type);
    char *m = aligned_alloc(64, n ? n : 64);
    if (!m)
        return 0;
    q->mem = m;
    if (type == QLIN_INT8) {
        q->wq = (int8_t *)m;
        q->ws = (float *)(m + up64(linear_i8_weight_bytes(C, OC)));
        q->wsum = (int32_t *)((char *)q->ws + up64(linear_i8_panel_floats(OC) * 4));
    }
    return 1;
}

/* The weight in oneDNN's layout too where oneDNN runs the int8 sums; its
 * absence (oneDNN refused) only means the own kernels run. */
static void i8_onednn(qlinear *q, const int8_t *rows)
{
    if (linear_i8_onednn_wanted())
        q->wd = linear_i8_onednn_pack(rows, q->C, q->OC);
}

int qlinear_make(qlinear *q, const float *weight, int C, int OC, qlinear_type type)
{
    if (!alloc(q, C, OC, type))
        return 0;
    switch (type) {
    case QLIN_INT8: {
        /* oneDNN's layout from the same quantized rows: quantized once */
        size_t nr = (size_t)OC * C;
        int8_t *rows = linear_i8_onednn_wanted() ? malloc(nr ? nr : 1) : NULL;
        if (rows) {
            quantize_rows_s8(rows, q->ws, weight, OC, C, C);
            linear_i8_pack_quantized(q->wq, q->ws, q->wsum, rows, q->ws, C, OC);
            i8_onednn(q, rows);
            free(rows);
        } else {
            linear_i8_pack(q->wq, q->ws, q->wsum, weight, C, OC);
        }
        break;
    }
    case QLIN_BF16:
        q->wb = (uint16_t *)q->mem;
        linear_bf16_pack(q->wb, weight, C, OC);
        break;
    default:
        q->wp = (float *)q->mem;
        linear_pack(q->wp, weight, C, OC);
    }
    return 1;
}

int qlinear_make_i8(qlinear *q, const int8_t *wq_rows, const float *scale, int C, int OC)
{
    if (!alloc(q, C, OC, QLIN_INT8))
        return 0;
    linear_i8_pack_quantized(q->wq, q->ws, q->wsum, wq_rows, scale, C, OC);
    i8_onednn(q, wq_rows);
    return 1;
}

void qlinear_free(qlinear *q)
{
    if (q) {
        free(q->mem);
        linear_i8_onednn_weight_free(q->wd);
        q->mem = NULL;
        q->wd = NULL;
    }
}

size_t qlinear_scratch_bytes(qlinear_type type, int N, int C)
{
    switch (type) {
    case QLIN_INT8:
        return linear_i8_scratch_bytes(N, C);
    case QLIN_BF16:
        return linear_bf16_scratch_bytes(N, C);
    default:
        return 0;
    }
}

void qlinear_forward(float *out, const float *inp, const qlinear *q, const float *bias, int N, void *scratch)
{
    switch (q->type) {
    case QLIN_INT8:
        linear_i8_forward_rows(out, inp, q->wq, q->ws, q->wsum, q->wd, bias, N, q->C, q->OC, scratch);
        break;
    case QLIN_BF16:
        linear_bf16_forward(out, inp, q->wb, bias, N, q->C, q->OC, scratch);
        break;
    default:
        linear_packed_forward(out, inp, q->wp, bias, N, q->C, q->OC);
    }
}

qlinear_type qlinear_type_of(const char *resolved)
{
    return !strcmp(resolved, "int8") ? QLIN_INT8 : !strcmp(resolved, "bfloat16") ? QLIN_BF16 : QLIN_F32;
}

/* keep in sync with the rule in qkv.h and the README's "Compute types" */
qkv_status qkv_compute_type_resolve(const char *name, const char **resolved)
{
    if (!name || !*name || !strcmp(name, "default")) {
        *resolved = "float32"; /* the model's own type (checkpoints hold float32) */
        return QKV_OK;
    }
    if (!strcmp(name, "auto")) {
        *resolved = kern->isa >= ISA_AVX2 ? "int8" : "float32";
        return QKV_OK;
    }
    static const char *const names[][2] = {{"float32", "float32"},      {"int8", "int8"},
                                           {"int8_float32", "int8"},    {"int8_bfloat16", "int8"},
                                           {"bfloat16", "bfloat16"},    {"float", "float32"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i][0])) {
            *resolved = names[i][1];
            return QKV_OK;
        }
    return qkv_fail(QKV_ERR_CONFIG, "compute type \"%s\": expected default, auto, float32, int8, int8_float32, int8_bfloat16 "
                                    "or bfloat16", name);
}
