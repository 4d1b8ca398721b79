/* Element-wise ops: activations, residual add, dropout (loops:
 * impl/rows.inc). Threads take contiguous ranges of elements. */
#include "kernels/isa.h"
#include "kernels/kernels.h"

static void run(kpar_fn fn, size_t n, ew_args *a) { kpar_for((long)n, (double)n, PAR_MIN, fn, a); }

void activation_forward(float *out, const float *inp, size_t n, activation_kind act)
{
    ew_args a = {.out = out, .a = inp};
    run(act == ACT_RELU ? kern->relu : act == ACT_GELU ? kern->gelu : kern->swish, n, &a);
}

void activation_backward(float *dinp, const float *dout, const float *inp, size_t n, activation_kind act)
{
    ew_args a = {.out = dinp, .a = dout, .b = inp};
    run(act == ACT_RELU ? kern->relu_bwd : act == ACT_GELU ? kern->gelu_bwd : kern->swish_bwd, n, &a);
}

void residual_forward(float *out, const float *a, const float *b, size_t n)
{
    ew_args e = {.out = out, .a = a, .b = b};
    run(kern->add, n, &e);
}

void residual_backward(float *da, float *db, const float *dout, size_t n)
{
    ew_args e = {.out = da, .out2 = db, .a = dout};
    run(kern->add_both, n, &e);
}

/* Counter-based draws: element i gets the same value on any thread. */
void dropout_mask(float *mask, size_t n, float p, uint64_t seed)
{
    ew_args e = {.out2 = mask, .p = p, .keep = p < 1 ? 1.0f / (1.0f - p) : 0.0f, .seed = seed};
    run(kern->dropout_mask, n, &e);
}

void dropout_forward(float *out, float *mask, const float *inp, size_t n, float p, uint64_t seed)
{
    ew_args e = {.out = out, .out2 = mask, .a = inp, .p = p, .keep = p < 1 ? 1.0f / (1.0f - p) : 0.0f, .seed = seed};
    run(kern->dropout, n, &e);
}

void dropout_backward(float *dinp, const float *dout, const float *mask, size_t n)
{
    ew_args e = {.out = dinp, .a = dout, .b = mask};
    run(kern->mul_add, n, &e);
}
