/* kernels/pooling: each kernel against its plain _ref twin on random and odd
 * shapes, and the edge cases of its contract. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "kernels/pooling.h"
#include "test.h"

static void fill(float *x, size_t n, qkv_rng *r)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(qkv_rng_uniform(r) * 4 - 2);
}

static void test_pool_matches_ref(void)
{
    qkv_rng r;
    qkv_rng_seed(&r, 15);
    const int shapes[][3] = {{1, 1, 1}, {3, 7, 5}, {4, 33, 384}, {40, 30, 64}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int B = shapes[s][0], T = shapes[s][1], C = shapes[s][2];
        float *x = malloc(sizeof(float) * B * T * C), *a = malloc(sizeof(float) * B * C),
              *b = malloc(sizeof(float) * B * C);
        int *len = malloc(sizeof(int) * B);
        fill(x, (size_t)B * T * C, &r);
        for (int i = 0; i < B; i++)
            len[i] = 1 + (int)(qkv_rng_uniform(&r) * T) % T;
        for (int k = POOL_MEAN; k <= POOL_MAX; k++) {
            pool_forward(a, x, len, B, T, C, (pool_kind)k);
            pool_forward_ref(b, x, len, B, T, C, (pool_kind)k);
            CHECK_CLOSE_F32(a, b, (size_t)B * C, 1e-6, "pool");
        }
        l2_normalize_forward(a, x, B, C);
        l2_normalize_forward_ref(b, x, B, C);
        CHECK_CLOSE_F32(a, b, (size_t)B * C, 1e-6, "l2_normalize");
        memcpy(a, x, sizeof(float) * B * C);
        memcpy(b, x, sizeof(float) * B * C);
        add_row_forward(a, x + (size_t)(T - 1) * C, B, C); /* a row inside x: [B, T, C] has T rows >= 1 */
        add_row_forward_ref(b, x + (size_t)(T - 1) * C, B, C);
        CHECK_CLOSE_F32(a, b, (size_t)B * C, 0, "add_row");
        free(x), free(a), free(b), free(len);
    }
    /* max ignores the padded tokens, and a zero row normalises to zero */
    float x[2 * 3 * 2] = {1, -1, 2, -5, 100, 100, 0, 0, 0, 0, 0, 0}, o[4];
    int len[2] = {2, 1};
    pool_forward(o, x, len, 2, 3, 2, POOL_MAX);
    CHECK(o[0] == 2 && o[1] == -1 && o[2] == 0, "max pool %g %g %g", o[0], o[1], o[2]);
    l2_normalize_forward(o, o + 2, 1, 2);
    CHECK(o[0] == 0 && o[1] == 0, "zero row normalised to %g %g", o[0], o[1]);
}

static void test_topk_matches_ref(void)
{
    qkv_rng r;
    qkv_rng_seed(&r, 7);
    int Q = 9, N = 301, ks[] = {1, 10, 301, 400};
    float *s = malloc(sizeof(float) * Q * N), va[9 * 301], vb[9 * 301];
    int ia[9 * 301], ib[9 * 301];
    fill(s, (size_t)Q * N, &r);
    s[5] = s[7] = s[9] = 3; /* ties: lower index first */
    for (size_t t = 0; t < sizeof ks / sizeof ks[0]; t++) {
        int k = ks[t] > N ? N : ks[t];
        topk_forward(ia, va, s, Q, N, ks[t]);
        topk_forward_ref(ib, vb, s, Q, N, ks[t]);
        CHECK(!memcmp(ia, ib, sizeof(int) * Q * k), "top-%d indices differ from the reference", ks[t]);
        CHECK_CLOSE_F32(va, vb, (size_t)Q * k, 0, "top-k values");
    }
    topk_forward(ia, va, s, 1, N, 3);
    CHECK(ia[0] == 5 && ia[1] == 7 && ia[2] == 9, "ties ordered %d %d %d", ia[0], ia[1], ia[2]);
    free(s);
}

static const test_case cases[] = {
    TEST(test_pool_matches_ref),
    TEST(test_topk_matches_ref),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
