/* The kernel table, chosen once before main() runs (isa.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "kernels/isa.h"
#include "kernels/quant.h"
#include "qkv.h"

static const kern_table *const tables[ISA_COUNT] = {&kern_generic, &kern_avx2, &kern_avx512};

const kern_table *kern = &kern_generic;

static const kernq_table *const qtables[ISA_COUNT] = {&kernq_generic, &kernq_avx2, &kernq_avx512};
const kernq_table *kernq = &kernq_generic;
kern_extras_t kern_extras;

/* What $QKV_ISA asked for that could not be had ("" when fine). */
static char isa_error[160];

/* Runs before main() (and before any constructor that could call a kernel
 * is likely to): the best path of the CPU, capped by $QKV_ISA as
 * CT2_FORCE_CPU_ISA and ONEDNN_MAX_CPU_ISA cap theirs. A bad $QKV_ISA
 * leaves the best path in place and the message for qkv_kernels_check. */
__attribute__((constructor)) static void choose(void)
{
    qkv_isa isa = cpu_best_isa();
    const char *env = getenv("QKV_ISA");
    if (env && *env) {
        int want = cpu_isa_parse(env);
        const char *why = NULL;
        if (want < 0)
            snprintf(isa_error, sizeof isa_error, "QKV_ISA=%s: unknown kernel path (expected generic, avx2 or avx512)",
                     env);
        else if (!cpu_isa_supported((qkv_isa)want, &why))
            snprintf(isa_error, sizeof isa_error, "QKV_ISA=%s: this CPU cannot run that path (it lacks %s)", env, why);
        else
            isa = (qkv_isa)want;
    }
    kern = tables[isa];
    kernq = qtables[isa];
    const cpu_features *f = cpu_get_features();
    kern_extras.vnni = f->avx512_vnni && isa >= ISA_AVX512;
    kern_extras.bf16 = f->avx512_bf16 && isa >= ISA_AVX512;
}

int kern_select(qkv_isa isa)
{
    if (isa < 0 || isa >= ISA_COUNT || !cpu_isa_supported(isa, NULL))
        return 0;
    kern = tables[isa];
    kernq = qtables[isa];
    return 1;
}

int kern_select_extras(int vnni, int bf16)
{
    const cpu_features *f = cpu_get_features();
    if ((vnni && !f->avx512_vnni) || (bf16 && !f->avx512_bf16))
        return 0;
    kern_extras.vnni = vnni;
    kern_extras.bf16 = bf16;
    return 1;
}

qkv_status qkv_kernels_check(void)
{
    if (isa_error[0])
        return qkv_fail(QKV_ERR_CONFIG, "%s", isa_error);
    return QKV_OK;
}

const char *qkv_kernels_isa(void) { return cpu_isa_name(kern->isa); }

int qkv_bf16_native(const char **why)
{
    const cpu_features *f = cpu_get_features();
    const char *miss = NULL;
    if (kern->isa < ISA_AVX512)
        miss = cpu_isa_supported(ISA_AVX512, NULL) ? "the avx512 kernel path is capped off by $QKV_ISA"
                                                    : "no usable AVX-512";
    else if (!kern_extras.bf16 && !(f->amx_bf16 && f->amx_granted))
        miss = "neither avx512_bf16 nor amx_bf16";
    if (why)
        *why = miss;
    return miss == NULL;
}

/* From OpenBLAS; declared here and in gemm.c only. */
char *openblas_get_corename(void);
char *openblas_get_config(void);

int qkv_system_info(char *buf, size_t size)
{
    const cpu_features *f = cpu_get_features();
    char feats[400];
    cpu_feature_string(feats, sizeof feats);
    char paths[64] = "";
    size_t n = 0;
    const char *auto_type = "float32";
    qkv_compute_type_resolve("auto", &auto_type);
    for (int i = 0; i < ISA_COUNT; i++)
        if (cpu_isa_supported((qkv_isa)i, NULL))
            n += (size_t)snprintf(paths + n, sizeof paths - n, "%s%s", n ? " " : "", cpu_isa_name((qkv_isa)i));
    return snprintf(buf, size,
                    "cpu: %s (%s)\n"
                    "features: %s\n"
                    "kernel paths: %s (this CPU); in use: %s%s\n"
                    "blas: %s, core %s (its own dispatch; OPENBLAS_CORETYPE caps it)\n"
                    "int8 products: %s%s; bf16 products: %s\n"
                    "compute type auto: %s (translation; see qkv translate --help)\n",
                    f->brand[0] ? f->brand : "unknown", f->vendor, feats, paths, cpu_isa_name(kern->isa),
                    getenv("QKV_ISA") && *getenv("QKV_ISA") ? " (capped by $QKV_ISA)" : "", openblas_get_config(),
                    openblas_get_corename(), linear_i8_path(),
                    linear_i8_onednn_wanted() ? ", oneDNN's matmul from 64 rows ($QKV_INT8_ONEDNN=0: never)" : "",
                    linear_bf16_path(), auto_type);
}
