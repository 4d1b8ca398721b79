/* What the CPU and the OS let qkv run, read once with cpuid and xgetbv.
 *
 * An instruction set counts only when the CPU reports it AND the OS saves
 * its registers on a context switch (XCR0): a hypervisor can show AVX-512
 * in cpuid with the zmm state disabled. AMX also needs Linux to grant the
 * tile data state to the process (arch_prctl ARCH_REQ_XCOMP_PERM, 5.16+). */
#ifndef QKV_KERNELS_CPU_H
#define QKV_KERNELS_CPU_H

/* The kernel paths, in order: each needs everything the ones before it
 * need. (VNNI, BF16 and AMX are features within the avx512 path.) */
typedef enum { ISA_GENERIC = 0, ISA_AVX2 = 1, ISA_AVX512 = 2, ISA_COUNT = 3 } qkv_isa;

typedef struct {
    char vendor[13];
    char brand[49];
    int sse42, avx, avx2, fma, f16c;
    int avx512f, avx512bw, avx512vl, avx512dq, avx512_vnni, avx512_bf16, avx_vnni;
    int amx_tile, amx_int8, amx_bf16, amx_granted; /* granted: the OS gave this process tile state */
    int os_ymm, os_zmm, os_amx;                    /* XCR0 bits for ymm, zmm/opmask, tile state */
} cpu_features;

/* The features of this CPU (computed on first call; thread-safe). */
const cpu_features *cpu_get_features(void);

/* Whether path isa can run here; when it cannot, *why (if not NULL) names
 * the first missing feature ("avx512bw", "OS support for zmm registers"). */
int cpu_isa_supported(qkv_isa isa, const char **why);

/* The best path this CPU supports. */
qkv_isa cpu_best_isa(void);

/* "generic", "avx2", "avx512"; parse returns -1 for an unknown name. */
const char *cpu_isa_name(qkv_isa isa);
int cpu_isa_parse(const char *name);

/* Space-separated list of the features found, e.g. "avx2 fma avx512f ...". */
void cpu_feature_string(char *buf, int size);

#endif
