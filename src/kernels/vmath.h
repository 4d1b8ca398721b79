/* Branch-free float exp and erf that the compiler can vectorise inside an
 * `omp simd` loop (libm's expf/erff are calls it cannot). Scalar code; the
 * compiler picks the vector width for the target, so there is no separate
 * fallback to keep in sync. The calling file needs
 * `#pragma GCC optimize("no-trapping-math")`: with trapping math GCC keeps
 * the clamps below as branches and the loop scalar.
 *
 * Accuracy (measured in tests/test_kernels.c against libm over their
 * ranges): vexpf within 2 ulp-ish (relative 3e-7); verff absolute 2e-7. */
#ifndef QKV_KERNELS_VMATH_H
#define QKV_KERNELS_VMATH_H

#include <stdint.h>
#include <string.h>

/* exp(x); 0 below -87.3 (where expf gives denormals or 0; -inf included),
 * 2.2e38 above 88.3, NaN for NaN. */
static inline float vexpf(float x)
{
    float x_in = x;
    /* exp(x) = 2^n exp(r), n = round(x / ln 2), |r| <= ln2 / 2; ln 2 split in
     * two parts so r keeps its low bits (Cephes expf). */
    x = x < -87.3f ? -87.3f : x;
    x = x > 88.3f ? 88.3f : x;
    /* round to nearest by the 1.5 * 2^23 trick: floorf/rintf would be calls
     * that keep the loop scalar */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return x_in < -87.3f ? 0.0f : p * scale;
}

/* erf(x): for |x| >= 0.5 Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7,
 * the form PyTorch's vectorised CPU erf uses); below, where that form loses
 * bits to 1 - (~1), the Taylor series 2/sqrt(pi) sum (-1)^k x^(2k+1) /
 * (k! (2k+1)) to x^13 (remainder < 2e-8). Both are computed and one picked,
 * so the loop stays branch-free. */
static inline float verff(float x)
{
    float x2 = x * x;
    float s = -1.0f / 75600;
    s = s * x2 + 1.0f / 9360;
    s = s * x2 + -1.0f / 1320;
    s = s * x2 + 1.0f / 216;
    s = s * x2 + -1.0f / 42;
    s = s * x2 + 1.0f / 10;
    s = s * x2 + -1.0f / 3;
    s = s * x2 + 1.0f;
    float small = 1.1283791670955126f * x * s;
    float ax = x < 0 ? -x : x;
    float t = 1.0f / (1.0f + 0.3275911f * ax);
    float y = 1.061405429f;
    y = y * t + -1.453152027f;
    y = y * t + 1.421413741f;
    y = y * t + -0.284496736f;
    y = y * t + 0.254829592f;
    y = 1.0f - y * t * vexpf(-ax * ax);
    y = x < 0 ? -y : y;
    return ax < 0.5f ? small : y;
}

#endif
