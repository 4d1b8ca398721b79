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

/* an int8 weight's panels, scales and sums, without the plain rows */
static size_t i8_core_bytes(int C, int OC)
{
    return up64(linear_i8_weight_bytes(C, OC)) + 2 * up64(linear_i8_panel_floats(OC) * 4);
}

size_t qlinear_bytes(int C, int OC, qlinear_type type)
{
    switch (type) {
    case QLIN_INT8:
        return i8_core_bytes(C, OC) + (linear_i8_onednn_wanted() ? up64((size_t)OC * C) : 0);
    case QLIN_BF16:
        return up64(linear_bf16_weight_elems(C, OC) * 2);
    default:
        return up64(linear_packed_floats(C, OC) * sizeof(float));
    }
}

int qlinear_make(qlinear *q, const float *weight, int C, int OC, qlinear_type type)
{
    *q = (qlinear){.type = type, .C = C, .OC = OC};
    size_t n = qlinear_bytes(C, OC, type);
    char *m = aligned_alloc(64, n ? n : 64);
    if (!m)
        return 0;
    q->mem = m;
    switch (type) {
    case QLIN_INT8:
        q->wq = (int8_t *)m;
        q->ws = (float *)(m + up64(linear_i8_weight_bytes(C, OC)));
        q->wsum = (int32_t *)((char *)q->ws + up64(linear_i8_panel_floats(OC) * 4));
        if (n > i8_core_bytes(C, OC)) { /* the plain rows too: quantized once, then packed */
            q->wrows = (int8_t *)(m + i8_core_bytes(C, OC));
            quantize_rows_s8(q->wrows, q->ws, weight, OC, C, C);
            linear_i8_pack_quantized(q->wq, q->ws, q->wsum, q->wrows, q->ws, C, OC);
        } else {
            linear_i8_pack(q->wq, q->ws, q->wsum, weight, C, OC);
        }
        break;
    case QLIN_BF16:
        q->wb = (uint16_t *)m;
        linear_bf16_pack(q->wb, weight, C, OC);
        break;
    default:
        q->wp = (float *)m;
        linear_pack(q->wp, weight, C, OC);
    }
    return 1;
}

int qlinear_make_i8(qlinear *q, const int8_t *wq_rows, const float *scale, int C, int OC)
{
    *q = (qlinear){.type = QLIN_INT8, .C = C, .OC = OC};
    size_t n = qlinear_bytes(C, OC, QLIN_INT8);
    char *m = aligned_alloc(64, n ? n : 64);
    if (!m)
        return 0;
    q->mem = m;
    q->wq = (int8_t *)m;
    q->ws = (float *)(m + up64(linear_i8_weight_bytes(C, OC)));
    q->wsum = (int32_t *)((char *)q->ws + up64(linear_i8_panel_floats(OC) * 4));
    linear_i8_pack_quantized(q->wq, q->ws, q->wsum, wq_rows, scale, C, OC);
    if (n > i8_core_bytes(C, OC)) {
        q->wrows = (int8_t *)(m + i8_core_bytes(C, OC));
        memcpy(q->wrows, wq_rows, (size_t)OC * C);
    }
    return 1;
}

void qlinear_free(qlinear *q)
{
    if (q) {
        free(q->mem);
        q->mem = NULL;
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
        linear_i8_forward_rows(out, inp, q->wq, q->ws, q->wsum, q->wrows, bias, N, q->C, q->OC, scratch);
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
