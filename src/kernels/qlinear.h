/* A linear layer's weight packed once in one of the compute types of the
 * few-row products (decoding): float32 (linear_packed.h), int8 or bf16
 * (quant.h). The owner makes it when a model's decoder is set up and
 * calls qlinear_forward with a scratch of qlinear_scratch_bytes. */
#ifndef QKV_KERNELS_QLINEAR_H
#define QKV_KERNELS_QLINEAR_H

#include <stddef.h>
#include <stdint.h>

#include "qkv.h"

typedef enum { QLIN_F32 = 0, QLIN_INT8 = 1, QLIN_BF16 = 2 } qlinear_type;

typedef struct {
    qlinear_type type;
    int C, OC;
    void *mem; /* the one allocation holding what the type needs */
    float *wp; /* f32: packed panels */
    int8_t *wq;
    float *ws;
    int32_t *wsum;
    struct i8_onednn_weight *wd; /* int8: the weight in oneDNN's layout where linear_i8_onednn_wanted, else NULL */
    uint16_t *wb;
} qlinear;

/* Packs weight [OC, C]. Returns 0 when out of memory. */
int qlinear_make(qlinear *q, const float *weight, int C, int OC, qlinear_type type);
/* An int8 weight from rows already quantized (quant.h's scheme): wq_rows
 * [OC, C], scale [OC]. Returns 0 when out of memory. */
int qlinear_make_i8(qlinear *q, const int8_t *wq_rows, const float *scale, int C, int OC);
void qlinear_free(qlinear *q);

/* Bytes of the packed weight in its type, and what a made one holds in
 * all (what a model's memory grows by: oneDNN's copy too). */
size_t qlinear_bytes(int C, int OC, qlinear_type type);
size_t qlinear_held_bytes(const qlinear *q);

/* Scratch for N rows (0 for f32). */
size_t qlinear_scratch_bytes(qlinear_type type, int N, int C);

/* out: [N, OC]   inp: [N, C]   bias: [OC] or NULL */
void qlinear_forward(float *out, const float *inp, const qlinear *q, const float *bias, int N, void *scratch);

/* qkv_compute_type_resolve is declared in qkv.h. The qlinear_type of one
 * of its resolved names ("float32", "int8", "bfloat16"). */
qlinear_type qlinear_type_of(const char *resolved);

#endif
