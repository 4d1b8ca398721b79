/* Row-wise softmax, log-softmax and the label-smoothed cross-entropy, all
 * max-subtracted so that no exp overflows. The loops are the dispatch
 * table's (impl/rows.inc); threads take whole rows. */
#include <assert.h>

#include "kernels/isa.h"
#include "kernels/kernels.h"

void softmax_forward(float *out, const float *inp, int N, int V)
{
    rows_args a = {out, inp, V};
    kpar_for(N, (double)N * V, PAR_MIN, kern->softmax, &a);
}

void log_softmax_forward(float *out, const float *inp, int N, int V)
{
    rows_args a = {out, inp, V};
    kpar_for(N, (double)N * V, PAR_MIN, kern->log_softmax, &a);
}

void logsumexp_rows(float *out, const float *inp, int N, int V)
{
    rows_args a = {out, inp, V};
    kpar_for(N, (double)N * V, PAR_MIN, kern->logsumexp, &a);
}

void crossentropy_forward(float *loss, float *probs, const float *logits, const int *targets, int N, int V,
                          float eps, int ignore_index)
{
#ifndef NDEBUG
    for (int n = 0; n < N; n++)
        assert(targets[n] == ignore_index || (targets[n] >= 0 && targets[n] < V));
#endif
    ce_args a = {loss, probs, logits, targets, V, eps, ignore_index};
    kpar_for(N, (double)N * V, PAR_MIN, kern->crossentropy, &a);
}

void crossentropy_backward(float *dlogits, const float *probs, const int *targets, const float *dloss, int N,
                           int V, float eps, int ignore_index)
{
    ce_bwd_args a = {dlogits, probs, dloss, targets, V, eps, ignore_index};
    kpar_for(N, (double)N * V, PAR_MIN, kern->crossentropy_bwd, &a);
}
