/* base/: errors, RNG, arena, atomic writes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/io.h"
#include "base/rng.h"
#include "base/status.h"
#include "test.h"

static void test_error_message(void)
{
    qkv_status s = qkv_fail(QKV_ERR_CONFIG, "field '%s': expected a positive integer", "d_model");
    CHECK(s == QKV_ERR_CONFIG, "status %d", s);
    CHECK(strcmp(qkv_last_error(), "field 'd_model': expected a positive integer") == 0, "message '%s'",
          qkv_last_error());
    qkv_fail_context(QKV_ERR_CONFIG, "%s", "cfg.json");
    CHECK(strncmp(qkv_last_error(), "cfg.json: field", 15) == 0, "context message '%s'", qkv_last_error());
}

static void test_rng_repeatable(void)
{
    qkv_rng a, b;
    qkv_rng_seed(&a, 42);
    qkv_rng_seed(&b, 42);
    for (int i = 0; i < 1000; i++)
        CHECK(qkv_rng_u64(&a) == qkv_rng_u64(&b), "draw %d differs", i);
    qkv_rng_seed(&b, 43);
    CHECK(qkv_rng_u64(&a) != qkv_rng_u64(&b), "seeds 42 and 43 give the same draw");
}

static void test_rng_distribution(void)
{
    qkv_rng r;
    qkv_rng_seed(&r, 7);
    double sum = 0, sq = 0;
    int n = 200000, below[10] = {0};
    for (int i = 0; i < n; i++) {
        float u = qkv_rng_uniform(&r);
        CHECK(u >= 0 && u < 1, "uniform out of range: %g", u);
        below[(int)(u * 10)]++;
        float z = qkv_rng_normal(&r);
        sum += z;
        sq += (double)z * z;
    }
    for (int k = 0; k < 10; k++)
        CHECK(abs(below[k] - n / 10) < n / 100, "uniform bucket %d has %d of %d", k, below[k], n);
    double mean = sum / n, var = sq / n - mean * mean;
    CHECK(mean > -0.01 && mean < 0.01, "normal mean %g", mean);
    CHECK(var > 0.98 && var < 1.02, "normal variance %g", var);
    for (int i = 0; i < 1000; i++) {
        uint64_t x = qkv_rng_below(&r, 7);
        CHECK(x < 7, "below(7) gave %llu", (unsigned long long)x);
    }
}

static void test_hash_uniform_counter_based(void)
{
    CHECK(qkv_hash_uniform(1, 5) == qkv_hash_uniform(1, 5), "same (seed, i) differs");
    int same = 0;
    for (int i = 0; i < 100; i++)
        same += qkv_hash_uniform(1, i) == qkv_hash_uniform(2, i);
    CHECK(same < 3, "%d of 100 draws equal across seeds", same);
}

static void test_arena(void)
{
    qkv_arena a;
    CHECK(qkv_arena_init(&a, 1000) == QKV_OK, "init: %s", qkv_last_error());
    char *p = qkv_arena_alloc(&a, 10);
    char *q = qkv_arena_alloc(&a, 100);
    CHECK(p && q, "allocations failed");
    CHECK(((uintptr_t)p % 64) == 0 && ((uintptr_t)q % 64) == 0, "misaligned");
    CHECK(q - p == 64, "second block at offset %td", q - p);
    size_t m = qkv_arena_mark(&a);
    CHECK(qkv_arena_alloc(&a, 100000) == NULL, "oversized allocation succeeded");
    qkv_arena_reset(&a, m);
    CHECK(a.used == m, "reset");
    qkv_arena_free(&a);
}

static void test_atomic_write(void)
{
    char dir[] = "/tmp/qkv_test_io_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[256];
    snprintf(path, sizeof path, "%s/out.txt", dir);
    CHECK(qkv_write_file(path, "hello", 5) == QKV_OK, "write: %s", qkv_last_error());
    char *data;
    size_t len;
    CHECK(qkv_read_file(path, &data, &len) == QKV_OK, "read: %s", qkv_last_error());
    CHECK(len == 5 && memcmp(data, "hello", 5) == 0, "content");
    free(data);

    /* An aborted write leaves the old content and no temporary file. */
    qkv_afile f;
    CHECK(qkv_afile_open(&f, path) == QKV_OK, "open");
    fputs("partial", f.fp);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s", f.tmp_path);
    qkv_afile_abort(&f);
    struct stat st;
    CHECK(stat(tmp, &st) != 0, "temporary file left behind");
    CHECK(qkv_read_file(path, &data, &len) == QKV_OK && len == 5, "old content lost");
    free(data);

    snprintf(path, sizeof path, "%s/missing/dir/x", dir);
    CHECK(qkv_write_file(path, "x", 1) == QKV_ERR_IO, "write into a missing directory succeeded");
    CHECK(strstr(qkv_last_error(), "missing/dir") != NULL, "message lacks the path: %s", qkv_last_error());
    CHECK(qkv_read_file("/nonexistent/qkv", &data, &len) == QKV_ERR_IO, "read of a missing file succeeded");
    snprintf(path, sizeof path, "%s/out.txt", dir);
    remove(path);
    rmdir(dir);
}

static const test_case cases[] = {
    TEST(test_error_message), TEST(test_rng_repeatable), TEST(test_rng_distribution),
    TEST(test_hash_uniform_counter_based), TEST(test_arena), TEST(test_atomic_write),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
