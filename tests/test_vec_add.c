/* kernels/vec_add: the optimised sum equals the plain one bit for bit on odd
 * sizes, and summing in a fixed order is repeatable. */
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "kernels/vec_add.h"
#include "test.h"

static void test_matches_ref(void)
{
    static const size_t sizes[] = {0, 1, 3, 7, 16, 17, 255, 1024, 4099};
    qkv_rng r;
    qkv_rng_seed(&r, 5);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        float *a = malloc((n + 1) * sizeof *a), *b = malloc((n + 1) * sizeof *b), *x = malloc((n + 1) * sizeof *x);
        for (size_t i = 0; i < n; i++) {
            a[i] = b[i] = qkv_rng_uniform(&r) * 2 - 1;
            x[i] = (qkv_rng_uniform(&r) * 2 - 1) * 1e-3f;
        }
        vec_add(a, x, n);
        vec_add_ref(b, x, n);
        for (size_t i = 0; i < n; i++)
            if (memcmp(&a[i], &b[i], sizeof a[i]) != 0) {
                CHECK(0, "n %zu, index %zu: vec_add %.9g, vec_add_ref %.9g", n, i, a[i], b[i]);
                break;
            }
        free(a);
        free(b);
        free(x);
    }
}

static const test_case cases[] = {TEST(test_matches_ref)};
int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
