/* cpuid, xgetbv and the AMX permission (cpu.h). */
#include "kernels/cpu.h"

#include <cpuid.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

static cpu_features F;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* xgetbv without -mxsave: the instruction's bytes, ecx = 0 (XCR0). */
static unsigned long long xcr0(void)
{
    unsigned lo, hi;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

/* Linux: ask for the AMX tile data state (XFEATURE_XTILEDATA = 18). */
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

static void detect(void)
{
    unsigned a, b, c, d, max;
    if (!__get_cpuid(0, &max, &b, &c, &d))
        return;
    memcpy(F.vendor, &b, 4), memcpy(F.vendor + 4, &d, 4), memcpy(F.vendor + 8, &c, 4);
    unsigned ext;
    if (__get_cpuid(0x80000000, &ext, &b, &c, &d) && ext >= 0x80000004) {
        unsigned *w = (unsigned *)F.brand;
        for (unsigned i = 0; i < 3; i++)
            __get_cpuid(0x80000002 + i, &w[4 * i], &w[4 * i + 1], &w[4 * i + 2], &w[4 * i + 3]);
        F.brand[48] = 0;
    }
    __cpuid(1, a, b, c, d);
    F.sse42 = (c >> 20) & 1;
    F.fma = (c >> 12) & 1;
    F.f16c = (c >> 29) & 1;
    F.avx = (c >> 28) & 1;
    int osxsave = (c >> 27) & 1;
    if (osxsave) {
        unsigned long long x = xcr0();
        F.os_ymm = (x & 0x6) == 0x6;                /* xmm, ymm */
        F.os_zmm = F.os_ymm && (x & 0xe0) == 0xe0;  /* opmask, zmm_hi256, hi16_zmm */
        F.os_amx = (x & 0x60000) == 0x60000;        /* tilecfg, tiledata */
    }
    if (max >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        F.avx2 = (b >> 5) & 1;
        F.avx512f = (b >> 16) & 1;
        F.avx512dq = (b >> 17) & 1;
        F.avx512bw = (b >> 30) & 1;
        F.avx512vl = (b >> 31) & 1;
        F.avx512_vnni = (c >> 11) & 1;
        F.amx_bf16 = (d >> 22) & 1;
        F.amx_tile = (d >> 24) & 1;
        F.amx_int8 = (d >> 25) & 1;
        unsigned sub = a;
        if (sub >= 1) {
            __cpuid_count(7, 1, a, b, c, d);
            F.avx_vnni = (a >> 4) & 1;
            F.avx512_bf16 = (a >> 5) & 1;
        }
    }
    if (F.amx_tile && F.os_amx)
        F.amx_granted = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

const cpu_features *cpu_get_features(void)
{
    pthread_once(&once, detect);
    return &F;
}

int cpu_isa_supported(qkv_isa isa, const char **why)
{
    const cpu_features *f = cpu_get_features();
    const char *miss = NULL;
    switch (isa) {
    case ISA_AVX512:
        miss = !f->avx512f    ? "avx512f"
               : !f->avx512bw ? "avx512bw"
               : !f->avx512vl ? "avx512vl"
               : !f->avx512dq ? "avx512dq"
               : !f->os_zmm   ? "OS support for zmm registers (XCR0)"
                              : NULL;
        if (miss)
            break;
        /* avx512 includes the avx2 path's needs */
        __attribute__((fallthrough));
    case ISA_AVX2:
        miss = !f->avx2 ? "avx2" : !f->fma ? "fma" : !f->os_ymm ? "OS support for ymm registers (XCR0)" : NULL;
        break;
    case ISA_GENERIC:
        break;
    default:
        miss = "a known kernel path";
    }
    if (why)
        *why = miss;
    return miss == NULL;
}

qkv_isa cpu_best_isa(void)
{
    for (int i = ISA_COUNT - 1; i > 0; i--)
        if (cpu_isa_supported((qkv_isa)i, NULL))
            return (qkv_isa)i;
    return ISA_GENERIC;
}

static const char *const names[ISA_COUNT] = {"generic", "avx2", "avx512"};

const char *cpu_isa_name(qkv_isa isa) { return isa >= 0 && isa < ISA_COUNT ? names[isa] : "?"; }

int cpu_isa_parse(const char *name)
{
    for (int i = 0; i < ISA_COUNT; i++)
        if (!strcmp(name, names[i]))
            return i;
    return -1;
}

void cpu_feature_string(char *buf, int size)
{
    const cpu_features *f = cpu_get_features();
    const struct {
        const char *name;
        int on;
    } list[] = {{"sse4.2", f->sse42},      {"avx", f->avx && f->os_ymm}, {"avx2", f->avx2},
                {"fma", f->fma},          {"f16c", f->f16c},            {"avx512f", f->avx512f},
                {"avx512bw", f->avx512bw}, {"avx512vl", f->avx512vl},     {"avx512dq", f->avx512dq},
                {"avx512_vnni", f->avx512_vnni}, {"avx512_bf16", f->avx512_bf16}, {"avx_vnni", f->avx_vnni},
                {"amx_tile", f->amx_tile}, {"amx_int8", f->amx_int8},   {"amx_bf16", f->amx_bf16}};
    int n = 0;
    buf[0] = 0;
    for (size_t i = 0; i < sizeof list / sizeof list[0] && n < size; i++)
        if (list[i].on)
            n += snprintf(buf + n, (size_t)(size - n), "%s%s", n ? " " : "", list[i].name);
    if (f->avx512f && !f->os_zmm && n < size)
        n += snprintf(buf + n, (size_t)(size - n), " (zmm state not enabled by the OS)");
    if (f->amx_tile && !f->amx_granted && n < size)
        snprintf(buf + n, (size_t)(size - n), " (AMX tile state not granted)");
}
