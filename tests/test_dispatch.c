/* Kernel dispatch as a user meets it: `qkv version` names the path, a bad
 * or impossible $QKV_ISA is a clear error, and under Debian's qemu-user
 * with an older CPU model (-cpu Haswell: AVX2 without AVX-512; -cpu
 * Nehalem: no AVX) the same binary picks the AVX2 or generic path and
 * translates a few lines exactly as QKV_ISA=avx2 (generic) does natively.
 *
 * qemu 7.2 does not fault on AVX-512 instructions, so this checks the
 * selection, not the absence of instructions; the AVX-512 code lives in
 * its own files (src/kernels/avx512/) and nothing else is compiled above
 * the baseline. OpenBLAS picks its kernels by itself from the same cpuid,
 * so both sides of each comparison pin it with OPENBLAS_CORETYPE. The
 * program is ./qkv (or $QKV_BIN), run from the repository root. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu.h"
#include "test.h"

static const char *qkv_bin(void) { return getenv("QKV_BIN") ? getenv("QKV_BIN") : "./qkv"; }

static int have_qemu(void) { return test_run("command -v qemu-x86_64 >/dev/null 2>&1", NULL) == 0; }

static void test_version_names_the_path(void)
{
    char cmd[512], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s version 2>&1", qkv_bin());
    int rc = test_run(cmd, &out);
    CHECK(rc == 0, "'%s' exited %d", cmd, rc);
    char want[64];
    snprintf(want, sizeof want, "in use: %s", cpu_isa_name(cpu_best_isa()));
    CHECK(out && strstr(out, want), "qkv version does not say '%s':\n%s", want, out ? out : "");
    CHECK(out && strstr(out, "features:") && strstr(out, "blas:"), "qkv version lacks features or blas:\n%s",
          out ? out : "");
    free(out);
    /* capped */
    snprintf(cmd, sizeof cmd, "QKV_ISA=generic %s version 2>&1", qkv_bin());
    rc = test_run(cmd, &out);
    CHECK(rc == 0 && out && strstr(out, "in use: generic (capped by $QKV_ISA)"), "QKV_ISA=generic: rc %d\n%s", rc,
          out ? out : "");
    free(out);
}

static void test_bad_isa_is_an_error(void)
{
    char cmd[512], *out = NULL;
    snprintf(cmd, sizeof cmd, "QKV_ISA=avx9 %s version 2>&1", qkv_bin());
    int rc = test_run(cmd, &out);
    CHECK(rc != 0 && out && strstr(out, "QKV_ISA=avx9: unknown kernel path"), "QKV_ISA=avx9: rc %d\n%s", rc,
          out ? out : "");
    free(out);
    /* a path the CPU lacks: natively if this CPU lacks AVX-512, else under qemu */
    int native = !cpu_isa_supported(ISA_AVX512, NULL);
    if (!native && !have_qemu())
        return;
    snprintf(cmd, sizeof cmd, "QKV_ISA=avx512 %s%s translate -m x 2>&1 </dev/null",
             native ? "" : "qemu-x86_64 -cpu Haswell ", qkv_bin());
    rc = test_run(cmd, &out);
    CHECK(rc != 0 && out && strstr(out, "this CPU cannot run that path (it lacks avx512f)"),
          "QKV_ISA=avx512 on an AVX2 CPU: rc %d\n%s", rc, out ? out : "");
    free(out);
}

/* Translations of the first lines of the Marian fixture's sentences, beam 2,
 * under a prefix (environment and launcher); *out malloc'ed. */
static int translate(const char *prefix, char **out)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "head -6 %s/marian/sentences.txt | %s %s translate -m %s/marian/opus_tiny --beam-size 2 2>/dev/null",
             test_golden_dir(), prefix, qkv_bin(), test_golden_dir());
    return test_run(cmd, out);
}

static void check_under_qemu(const char *cpu, qkv_isa isa, const char *blas_core)
{
    if (!have_qemu()) {
        printf("skip test_dispatch/qemu_%s: qemu-x86_64 is not installed (scripts/install-deps installs it)\n", cpu);
        return;
    }
    if (!cpu_isa_supported(isa, NULL)) {
        printf("skip test_dispatch/qemu_%s: this CPU cannot run the %s path natively\n", cpu, cpu_isa_name(isa));
        return;
    }
    char cmd[512], *out = NULL;
    snprintf(cmd, sizeof cmd, "qemu-x86_64 -cpu %s %s version 2>/dev/null", cpu, qkv_bin());
    int rc = test_run(cmd, &out);
    char want[64];
    snprintf(want, sizeof want, "in use: %s\n", cpu_isa_name(isa));
    CHECK(rc == 0 && out && strstr(out, want), "under qemu -cpu %s: rc %d, expected '%s' in:\n%s", cpu, rc,
          cpu_isa_name(isa), out ? out : "");
    free(out);
    char emu[256], nat[256], *a = NULL, *b = NULL;
    snprintf(emu, sizeof emu, "OPENBLAS_CORETYPE=%s qemu-x86_64 -cpu %s", blas_core, cpu);
    snprintf(nat, sizeof nat, "OPENBLAS_CORETYPE=%s QKV_ISA=%s", blas_core, cpu_isa_name(isa));
    int ra = translate(emu, &a), rb = translate(nat, &b);
    CHECK(ra == 0 && rb == 0, "translate exited %d under qemu, %d natively", ra, rb);
    CHECK(a && b && strlen(a) > 6 && !strcmp(a, b), "qemu -cpu %s and QKV_ISA=%s translate differently:\n%s---\n%s",
          cpu, cpu_isa_name(isa), a ? a : "", b ? b : "");
    free(a);
    free(b);
}

static void test_qemu_haswell_is_avx2(void) { check_under_qemu("Haswell", ISA_AVX2, "Haswell"); }
static void test_qemu_nehalem_is_generic(void) { check_under_qemu("Nehalem", ISA_GENERIC, "Nehalem"); }

static const test_case cases[] = {
    TEST(test_version_names_the_path),
    TEST(test_bad_isa_is_an_error),
    TEST(test_qemu_haswell_is_avx2),
    TEST(test_qemu_nehalem_is_generic),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
