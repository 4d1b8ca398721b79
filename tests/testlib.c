#include "test.h"

#include "base/context.h"
#include "kernels/isa.h"
#include "qkv.h"

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int case_failures;
static int case_messages;

int test_failures(void) { return case_failures; }

void test_fail(const char *file, int line, const char *fmt, ...)
{
    case_failures++;
    if (case_messages++ >= 10)
        return; /* the first few messages tell the story */
    fprintf(stdout, "    %s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
}

int test_close_f64(const char *file, int line, const double *got, const double *want, size_t n,
                   double rtol, const char *what)
{
    double maxref = 0, maxdiff = 0;
    size_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i])) {
            test_fail(file, line, "%s: got non-finite %g at index %zu (want %g)", what, got[i], i, want[i]);
            return 0;
        }
        double d = fabs(got[i] - want[i]);
        if (d > maxdiff) {
            maxdiff = d;
            worst = i;
        }
        if (fabs(want[i]) > maxref)
            maxref = fabs(want[i]);
    }
    double rel = maxdiff / (maxref > 1e-30 ? maxref : 1e-30);
    if (n > 0 && rel > rtol) {
        test_fail(file, line, "%s: max|diff|/max|want| = %.3g > %.1g at index %zu (got %.9g, want %.9g, n=%zu)",
                  what, rel, rtol, worst, got[worst], want[worst], n);
        return 0;
    }
    return 1;
}

int test_close_f32(const char *file, int line, const float *got, const float *want, size_t n,
                   double rtol, const char *what)
{
    double maxref = 0, maxdiff = 0;
    size_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i])) {
            test_fail(file, line, "%s: got non-finite %g at index %zu (want %g)", what, (double)got[i], i,
                      (double)want[i]);
            return 0;
        }
        double d = fabs((double)got[i] - (double)want[i]);
        if (d > maxdiff) {
            maxdiff = d;
            worst = i;
        }
        if (fabs((double)want[i]) > maxref)
            maxref = fabs((double)want[i]);
    }
    double rel = maxdiff / (maxref > 1e-30 ? maxref : 1e-30);
    if (n > 0 && rel > rtol) {
        test_fail(file, line, "%s: max|diff|/max|want| = %.3g > %.1g at index %zu (got %.9g, want %.9g, n=%zu)",
                  what, rel, rtol, worst, (double)got[worst], (double)want[worst], n);
        return 0;
    }
    return 1;
}

const char *test_golden_dir(void)
{
    const char *d = getenv("QKV_GOLDEN_DIR");
    return d && *d ? d : "tests/golden";
}

/* Runs the wanted cases under the name prefix; adds to *passed / *failed. */
static void run_cases(int argc, char **argv, const char *prefix, const test_case *cases, int n, int *passed,
                      int *failed)
{
    for (int i = 0; i < n; i++) {
        if (argc > 1) {
            int wanted = 0;
            for (int a = 1; a < argc; a++)
                wanted |= strcmp(argv[a], cases[i].name) == 0;
            if (!wanted)
                continue;
        }
        case_failures = 0;
        case_messages = 0;
        cases[i].fn();
        if (case_failures == 0) {
            printf("ok   %s/%s\n", prefix, cases[i].name);
            (*passed)++;
        } else {
            printf("FAIL %s/%s (%d failed checks)\n", prefix, cases[i].name, case_failures);
            (*failed)++;
        }
        fflush(stdout);
    }
}

static const char *prog_name(char **argv)
{
    const char *prog = strrchr(argv[0], '/');
    return prog ? prog + 1 : argv[0];
}

/* A bad $QKV_ISA fails the program as one case, as ./qkv refuses to start. */
static int isa_env_ok(const char *prog)
{
    if (qkv_kernels_check() == QKV_OK)
        return 1;
    printf("FAIL %s: %s\n", prog, qkv_last_error());
    return 0;
}

int test_main(int argc, char **argv, const test_case *cases, int n)
{
    const char *prog = prog_name(argv);
    if (!isa_env_ok(prog))
        return 1;
    int passed = 0, failed = 0;
    run_cases(argc, argv, prog, cases, n, &passed, &failed);
    printf("%s: %d passed, %d failed\n", prog, passed, failed);
    return failed ? 1 : 0;
}

int test_main_per_isa(int argc, char **argv, const test_case *cases, int n)
{
    const char *prog = prog_name(argv);
    if (!isa_env_ok(prog))
        return 1;
    qkv_isa chosen = kern->isa;
    const char *env = getenv("QKV_ISA");
    int passed = 0, failed = 0, skipped = 0;
    char prefix[128];
    for (int i = 0; i < ISA_COUNT; i++) {
        const char *why = NULL;
        snprintf(prefix, sizeof prefix, "%s[%s]", prog, cpu_isa_name((qkv_isa)i));
        if (!cpu_isa_supported((qkv_isa)i, &why)) {
            printf("skip %s: this CPU lacks %s\n", prefix, why);
            skipped++;
        } else if (env && *env && i > (int)chosen) {
            printf("skip %s: above QKV_ISA=%s\n", prefix, env);
            skipped++;
        } else {
            kern_select((qkv_isa)i);
            int p0 = passed;
            run_cases(argc, argv, prefix, cases, n, &passed, &failed);
            printf("%s: %d cases on the %s path\n", prog, passed - p0, cpu_isa_name((qkv_isa)i));
        }
    }
    kern_select(chosen);
    printf("%s: %d passed, %d failed, %d paths skipped\n", prog, passed, failed, skipped);
    return failed ? 1 : 0;
}

int test_run(const char *cmd, char **out)
{
    if (out)
        *out = NULL;
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t cap = 1 << 16, n = 0, k;
    char *buf = malloc(cap);
    while (buf && (k = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += k;
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb)
                break;
            buf = nb;
        }
    }
    if (buf)
        buf[n] = 0;
    int st = pclose(p);
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void test_rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    closedir(d);
    rmdir(dir);
}

/* One context per thread count, kept for the program's life. */
static qkv_context *test_ctx[9];
static int test_nthreads = 1;

void test_set_threads(int n)
{
    if (n < 1 || n > 8)
        n = n < 1 ? 1 : 8;
    if (!test_ctx[n]) {
        qkv_context_options o = qkv_context_default_options();
        o.threads = n;
        if (qkv_context_new(&o, &test_ctx[n]) != QKV_OK) {
            fprintf(stderr, "test_set_threads(%d): %s\n", n, qkv_last_error());
            abort();
        }
    }
    ctx_bind(test_ctx[n]);
    test_nthreads = n;
}

int test_threads(void) { return test_nthreads; }
