/* Element-wise ops: activations, residual add, dropout. */
/* No FP-exception semantics: lets GCC turn vexpf's clamps into selects and
 * vectorise the loops that call it (we never read the FP status flags). */
#pragma GCC optimize("no-trapping-math")

#include <math.h>

#include "kernels/kernels.h"
#include "kernels/parallel.h"
#include "kernels/vmath.h"

/* Elements per task in the loops that GCC vectorises only in plain form
 * (not under `omp parallel for simd`, which keeps the 64-bit hash scalar). */
#define CHUNK 8192

void activation_forward(float *out, const float *inp, size_t n, activation_kind act)
{
    switch (act) {
    case ACT_RELU:
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
        for (size_t i = 0; i < n; i++)
            out[i] = inp[i] > 0 ? inp[i] : 0;
        break;
    case ACT_GELU:
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
        for (size_t i = 0; i < n; i++)
            out[i] = inp[i] * 0.5f * (1.0f + verff(inp[i] * (float)M_SQRT1_2));
        break;
    case ACT_SWISH:
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
        for (size_t i = 0; i < n; i++)
            out[i] = inp[i] / (1.0f + vexpf(-inp[i]));
        break;
    }
}

void activation_backward(float *dinp, const float *dout, const float *inp, size_t n, activation_kind act)
{
    switch (act) {
    case ACT_RELU:
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
        for (size_t i = 0; i < n; i++)
            dinp[i] += inp[i] > 0 ? dout[i] : 0;
        break;
    case ACT_GELU: {
        /* d/dx x Phi(x) = Phi(x) + x phi(x) */
        const float inv_sqrt_2pi = 0.3989422804014327f;
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
        for (size_t i = 0; i < n; i++) {
            float x = inp[i];
            float cdf = 0.5f * (1.0f + verff(x * (float)M_SQRT1_2));
            dinp[i] += dout[i] * (cdf + x * inv_sqrt_2pi * vexpf(-0.5f * x * x));
        }
        break;
    }
    case ACT_SWISH:
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
        for (size_t i = 0; i < n; i++) {
            float s = 1.0f / (1.0f + vexpf(-inp[i]));
            dinp[i] += dout[i] * s * (1.0f + inp[i] * (1.0f - s));
        }
        break;
    }
}

void residual_forward(float *out, const float *a, const float *b, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}

void residual_backward(float *da, float *db, const float *dout, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        da[i] += dout[i];
        db[i] += dout[i];
    }
}

/* qkv_hash_uniform(seed, i) inlined so the loop vectorises (the call to
 * qkv_splitmix64 in rng.c would keep it scalar: ~15 ns per element).
 * Keep in sync with qkv_splitmix64 / qkv_hash_uniform in base/rng.{c,h};
 * test_kernels compares the masks with the reference, which calls them. */
static inline uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static inline float hash_uniform(uint64_t seed, uint64_t i)
{
    /* < 2^24, so int32 -> float is exact and vectorises without AVX-512DQ */
    return (float)(int32_t)(mix64(seed ^ mix64(i)) >> 40) * (1.0f / 16777216.0f);
}

void dropout_mask(float *mask, size_t n, float p, uint64_t seed)
{
    float keep = p < 1 ? 1.0f / (1.0f - p) : 0.0f;
    /* Counter-based draws: element i gets the same value on any thread. */
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t c = 0; c < n; c += CHUNK) {
        size_t e = n - c < CHUNK ? n : c + CHUNK;
        for (size_t i = c; i < e; i++)
            mask[i] = hash_uniform(seed, i) >= p ? keep : 0.0f;
    }
}

void dropout_forward(float *out, float *mask, const float *inp, size_t n, float p, uint64_t seed)
{
    float keep = p < 1 ? 1.0f / (1.0f - p) : 0.0f;
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t c = 0; c < n; c += CHUNK) {
        size_t e = n - c < CHUNK ? n : c + CHUNK;
        for (size_t i = c; i < e; i++) {
            float m = hash_uniform(seed, i) >= p ? keep : 0.0f;
            mask[i] = m;
            out[i] = inp[i] * m;
        }
    }
}

void dropout_backward(float *dinp, const float *dout, const float *mask, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++)
        dinp[i] += dout[i] * mask[i];
}
