#include "base/rng.h"

#include <math.h>

uint64_t qkv_splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

void qkv_rng_seed(qkv_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) {
        x = qkv_splitmix64(x);
        r->s[i] = x;
    }
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t qkv_rng_u64(qkv_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float qkv_rng_uniform(qkv_rng *r) { return (float)(qkv_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

uint64_t qkv_rng_below(qkv_rng *r, uint64_t n)
{
    /* Rejection sampling: draws >= limit would bias the modulo. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
        x = qkv_rng_u64(r);
    } while (x >= limit);
    return x % n;
}

float qkv_rng_normal(qkv_rng *r)
{
    double u1 = ((double)(qkv_rng_u64(r) >> 11) + 1.0) * (1.0 / 9007199254740993.0); /* (0, 1] */
    double u2 = (double)(qkv_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}
