/* Kernels of sentence embeddings: pooling token vectors into one vector per
 * sentence, L2 normalisation, a row added to every row, and the top-k of
 * score rows. Conventions as kernels.h (outputs first, shapes in the
 * comment, no allocation); each has a plain *_ref twin in pooling.c that
 * tests/test_pooling.c compares it with. */
#ifndef QKV_KERNELS_POOLING_H
#define QKV_KERNELS_POOLING_H

#include <stddef.h>

typedef enum { POOL_MEAN = 1, POOL_CLS = 2, POOL_MAX = 3 } pool_kind;

/* Per sentence b over its first len[b] tokens (len[b] >= 1, <= T):
 *   MEAN: out[b] = sum_t inp[b,t] / len[b]   (sentence-transformers' mean)
 *   CLS:  out[b] = inp[b,0]
 *   MAX:  out[b,c] = max_t inp[b,t,c]
 * out: [B, C]   inp: [B, T, C]   len: [B] */
void pool_forward(float *out, const float *inp, const int *len, int B, int T, int C, pool_kind kind);
void pool_forward_ref(float *out, const float *inp, const int *len, int B, int T, int C, pool_kind kind);

/* out[n] = inp[n] / max(||inp[n]||_2, 1e-12)   (torch.nn.functional.normalize)
 * out, inp: [N, C] (out may alias inp) */
void l2_normalize_forward(float *out, const float *inp, int N, int C);
void l2_normalize_forward_ref(float *out, const float *inp, int N, int C);

/* out[n, :] += row[:]   out: [N, C]   row: [C] */
void add_row_forward(float *out, const float *row, int N, int C);
void add_row_forward_ref(float *out, const float *row, int N, int C);

/* For each row q of scores [Q, N], the k (<= N) largest entries, best
 * first; ties go to the lower index. idx, val: [Q, k]   scores: [Q, N] */
void topk_forward(int *idx, float *val, const float *scores, int Q, int N, int k);
void topk_forward_ref(int *idx, float *val, const float *scores, int Q, int N, int k);

#endif
