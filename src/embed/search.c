/* Cosine search by matrix products and a top-k (qkv_embed_search in qkv.h). */
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "kernels/kernels.h"
#include "kernels/pooling.h"
#include "qkv.h"

#define QUERY_BLOCK 256 /* scores of at most 256 queries at a time: [256, nc] floats */

qkv_status qkv_embed_search(const float *queries, int nq, const float *corpus, int nc, int dim, int k, int *idx,
                            float *score)
{
    if (nq < 0 || nc < 1 || dim < 1 || k < 1 || k > nc)
        return qkv_fail(QKV_ERR_ARG, "embed search: nq %d, nc %d, dim %d, k %d (need 1 <= k <= nc)", nq, nc, dim, k);
    float *c = malloc((size_t)nc * dim * sizeof *c);
    float *q = malloc((size_t)QUERY_BLOCK * dim * sizeof *q);
    float *s = malloc((size_t)QUERY_BLOCK * nc * sizeof *s);
    if (!c || !q || !s) {
        free(c), free(q), free(s);
        return qkv_fail(QKV_ERR_NOMEM, "embed search: out of memory for %d corpus vectors", nc);
    }
    l2_normalize_forward(c, corpus, nc, dim);
    for (int q0 = 0; q0 < nq; q0 += QUERY_BLOCK) {
        int m = nq - q0 < QUERY_BLOCK ? nq - q0 : QUERY_BLOCK;
        l2_normalize_forward(q, queries + (size_t)q0 * dim, m, dim);
        gemm(0, 1, m, nc, dim, 1.0f, q, dim, c, dim, 0.0f, s, nc); /* s = q c^T */
        topk_forward(idx + (size_t)q0 * k, score + (size_t)q0 * k, s, m, nc, k);
    }
    free(c), free(q), free(s);
    return QKV_OK;
}

qkv_status qkv_embed_cosine_pairs(const float *a, const float *b, int n, int dim, float *out)
{
    if (n < 0 || dim < 1)
        return qkv_fail(QKV_ERR_ARG, "embed cosine: n %d, dim %d", n, dim);
    float *na = malloc((size_t)dim * sizeof *na), *nb = malloc((size_t)dim * sizeof *nb);
    if (!na || !nb) {
        free(na), free(nb);
        return qkv_fail(QKV_ERR_NOMEM, "embed cosine: out of memory");
    }
    /* one normalised row of each, their dot product through the GEMM
     * interface: [1, dim] x [dim, 1] */
    for (int i = 0; i < n; i++) {
        l2_normalize_forward(na, a + (size_t)i * dim, 1, dim);
        l2_normalize_forward(nb, b + (size_t)i * dim, 1, dim);
        gemm(0, 1, 1, 1, dim, 1.0f, na, dim, nb, dim, 0.0f, out + i, 1);
    }
    free(na), free(nb);
    return QKV_OK;
}
