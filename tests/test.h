/* The test harness: each tests/test_*.c is one program holding a table of
 * cases. A case fails when any CHECK in it fails; every failure says what
 * differed (index, both values, tolerance). Output, one line per case:
 *     ok   <program>/<case>
 *     FAIL <program>/<case>: file:line: message
 * and tests/run sums them into the closing "N passed, N failed".
 *
 * Usage:
 *     static void test_something(void) { CHECK(x == 1, "x is %d", x); }
 *     static const test_case cases[] = { TEST(test_something), };
 *     int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
 * A program may be given case names on the command line to run only those. */
#ifndef QKV_TEST_H
#define QKV_TEST_H

#include <stddef.h>
#include <stdio.h>

typedef struct {
    const char *name;
    void (*fn)(void);
} test_case;

#define TEST(fn) { #fn, fn }
#define TEST_COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

int test_main(int argc, char **argv, const test_case *cases, int n);

/* The same once per kernel path (generic, avx2, avx512) that the CPU runs
 * and $QKV_ISA allows, each case named program[path]/case; a path left out
 * prints "skip program[path]: reason". For kernel tests. */
int test_main_per_isa(int argc, char **argv, const test_case *cases, int n);

/* Records a failure of the current case (printf-style message). */
void test_fail(const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#define CHECK(cond, ...)                                  \
    do {                                                  \
        if (!(cond))                                      \
            test_fail(__FILE__, __LINE__, __VA_ARGS__);   \
    } while (0)

/* Compares two arrays with the relative metric used against PyTorch:
 * max|got - want| / max(max|want|, 1e-30) <= rtol. On failure reports the
 * worst index and both values. Returns 1 when within tolerance. */
#define CHECK_CLOSE_F32(got, want, n, rtol, what) \
    test_close_f32(__FILE__, __LINE__, (got), (want), (n), (rtol), (what))
#define CHECK_CLOSE_F64(got, want, n, rtol, what) \
    test_close_f64(__FILE__, __LINE__, (got), (want), (n), (rtol), (what))
int test_close_f32(const char *file, int line, const float *got, const float *want, size_t n,
                   double rtol, const char *what);
int test_close_f64(const char *file, int line, const double *got, const double *want, size_t n,
                   double rtol, const char *what);

/* Number of failures recorded in the current case so far. */
int test_failures(void);

/* Kernels called from the test thread run on a context of n threads from
 * now on (n = 1: serially); test_threads() is the count in effect. */
void test_set_threads(int n);
int test_threads(void);

/* Runs a shell command (popen) and returns its exit status (-1 when it could
 * not run or did not exit normally); with out, *out receives everything it
 * wrote to stdout, NUL-terminated (caller frees). */
int test_run(const char *cmd, char **out);

/* Directory holding the committed fixtures ("tests/golden" unless
 * $QKV_GOLDEN_DIR is set); tests are run from the repository root. */
const char *test_golden_dir(void);

/* Removes a directory of plain files (no subdirectories), as the tests that
 * write Marian directories leave them; missing is fine. */
void test_rm_dir(const char *dir);

#endif
