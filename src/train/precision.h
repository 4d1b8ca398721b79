/* Choosing a training run's precision (qkv_train_options.precision; the
 * trainer calls these, the CLI shows what they said). */
#ifndef QKV_TRAIN_PRECISION_H
#define QKV_TRAIN_PRECISION_H

#include <stddef.h>

#include "qkv.h"

/* QKV_OK when want can run here: always for auto and fp32; bf16 needs
 * native bf16 products (qkv_bf16_native), else QKV_ERR_CONFIG saying so. */
qkv_status train_precision_check(qkv_precision want);

/* auto: fp32 without native bf16; else times the feed-forward products of
 * a model of d_model, d_ff at min(tokens, 1024) tokens in both precisions
 * on the bound context and takes bf16 when it is at least 10% faster.
 * *used: FP32 or BF16; why: a line saying how (n bytes). */
qkv_status train_precision_auto(int d_model, int d_ff, int tokens, qkv_precision *used, char *why, size_t n);

#endif
