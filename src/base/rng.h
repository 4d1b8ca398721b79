/* Our own seeded random numbers, so that a run is repeatable on every machine
 * and with any thread count.
 *
 * Two generators:
 *   - qkv_rng: a sequential xoshiro256** stream (shuffling, initialisation);
 *   - qkv_hash_uniform(seed, i): a counter-based draw (splitmix64 of seed and
 *     index), used by dropout so that element i gets the same draw whichever
 *     thread computes it. */
#ifndef QKV_BASE_RNG_H
#define QKV_BASE_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} qkv_rng;

void qkv_rng_seed(qkv_rng *r, uint64_t seed);
uint64_t qkv_rng_u64(qkv_rng *r);
/* Uniform in [0, 1) with 24 bits of precision (exactly representable in float). */
float qkv_rng_uniform(qkv_rng *r);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t qkv_rng_below(qkv_rng *r, uint64_t n);
/* Standard normal (Box-Muller, double precision internally). */
float qkv_rng_normal(qkv_rng *r);

uint64_t qkv_splitmix64(uint64_t x);
/* Uniform in [0, 1) determined only by (seed, i). */
static inline float qkv_hash_uniform(uint64_t seed, uint64_t i)
{
    return (float)(qkv_splitmix64(seed ^ qkv_splitmix64(i)) >> 40) * (1.0f / 16777216.0f);
}

#endif
