/* Linear layers in float32, bf16 and int8, qkv's kernels against oneDNN's
 * matmul primitive (weights in the layout oneDNN picks, reordered once, as
 * qkv packs once), at the decoder's shapes (M = rows of a step: 1-128) and
 * at training shapes (M 3000). GFLOP/s (2 M N K per product), best of 9
 * runs of >= 0.04 s each, at 1 and 2 threads. Not a test: run by hand.
 *
 *     make bench && build/bench/quant_linear [threads...]
 *
 * qkv columns: f32 = linear_packed_forward (prepacked, few rows), bf16 =
 * linear_bf16_forward, i8 = linear_i8_forward (both including the run-time
 * conversion of the activations), i8 dnnl = linear_i8_forward_rows with its
 * integer sums through oneDNN forced on (the path AMX-INT8 CPUs take from
 * 64 rows: the weight reordered once into oneDNN's layout, blocks of rows
 * per thread, each a matmul then qkv's store). oneDNN: f32 x f32, bf16 x
 * bf16 -> f32, u8 x s8 -> f32 (activations already quantized: it is given
 * less work). */
#include <dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/context.h"
#include "kernels/isa.h"
#include "kernels/linear_packed.h"
#include "kernels/quant.h"
#include "qkv.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

#define CK(x)                                                                    \
    do {                                                                         \
        dnnl_status_t s_ = (x);                                                  \
        if (s_ != dnnl_success) {                                                \
            fprintf(stderr, "%s:%d: %s failed (%d)\n", __FILE__, __LINE__, #x, s_); \
            exit(1);                                                             \
        }                                                                        \
    } while (0)

/* oneDNN's Debian build threads with OpenMP (libgomp, linked through it) */
void omp_set_num_threads(int n);
static void dnnl_set_num_threads_(int n) { omp_set_num_threads(n); }

static dnnl_engine_t eng;
static dnnl_stream_t strm;

typedef struct {
    dnnl_primitive_t prim;
    dnnl_memory_t a, b, c;
    void *bbuf;
} onednn_mm;

/* C[M, N] (f32) = A[M, K] (at) B^T, B given as [N, K] float (converted to bt
 * and reordered into the primitive's layout once). */
static int onednn_make(onednn_mm *o, int M, int N, int K, dnnl_data_type_t at, dnnl_data_type_t bt, void *abuf,
                       const void *bsrc, float *cbuf)
{
    dnnl_memory_desc_t amd, bmd, bmd_any, bmd_user, cmd;
    dnnl_dims_t ad = {M, K}, bd = {K, N}, cd = {M, N};
    CK(dnnl_memory_desc_init_by_tag(&amd, 2, ad, at, dnnl_ab));
    CK(dnnl_memory_desc_init_by_tag(&bmd_any, 2, bd, bt, dnnl_format_tag_any));
    CK(dnnl_memory_desc_init_by_tag(&bmd_user, 2, bd, bt, dnnl_ba));
    CK(dnnl_memory_desc_init_by_tag(&cmd, 2, cd, dnnl_f32, dnnl_ab));
    dnnl_matmul_desc_t md;
    CK(dnnl_matmul_desc_init(&md, &amd, &bmd_any, NULL, &cmd));
    dnnl_primitive_desc_t pd;
    if (dnnl_primitive_desc_create(&pd, &md, NULL, eng, NULL) != dnnl_success)
        return 0;
    bmd = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    CK(dnnl_primitive_create(&o->prim, pd));
    CK(dnnl_memory_create(&o->a, &amd, eng, abuf));
    CK(dnnl_memory_create(&o->c, &cmd, eng, cbuf));
    dnnl_memory_t user;
    CK(dnnl_memory_create(&user, &bmd_user, eng, (void *)bsrc));
    CK(dnnl_memory_create(&o->b, &bmd, eng, DNNL_MEMORY_ALLOCATE));
    dnnl_primitive_desc_t rpd;
    CK(dnnl_reorder_primitive_desc_create(&rpd, &bmd_user, eng, &bmd, eng, NULL));
    dnnl_primitive_t r;
    CK(dnnl_primitive_create(&r, rpd));
    dnnl_exec_arg_t rargs[2] = {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, o->b}};
    CK(dnnl_primitive_execute(r, strm, 2, rargs));
    CK(dnnl_stream_wait(strm));
    dnnl_primitive_destroy(r);
    dnnl_primitive_desc_destroy(rpd);
    dnnl_primitive_desc_destroy(pd);
    dnnl_memory_destroy(user);
    return 1;
}

static void onednn_run(onednn_mm *o)
{
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, o->a}, {DNNL_ARG_WEIGHTS, o->b}, {DNNL_ARG_DST, o->c}};
    CK(dnnl_primitive_execute(o->prim, strm, 3, args));
    CK(dnnl_stream_wait(strm));
}

static void onednn_free(onednn_mm *o)
{
    dnnl_primitive_destroy(o->prim);
    dnnl_memory_destroy(o->a);
    dnnl_memory_destroy(o->b);
    dnnl_memory_destroy(o->c);
}

typedef struct {
    int M, N, K;
    float *x, *w, *out, *wp, *ws;
    int8_t *wq, *wrows;
    i8_onednn_weight *wd;
    int32_t *wsum;
    uint16_t *wb;
    void *scratch;
    onednn_mm *o;
} job;

static void run_f32(job *j) { linear_packed_forward(j->out, j->x, j->wp, NULL, j->M, j->K, j->N); }
static void run_bf16(job *j) { linear_bf16_forward(j->out, j->x, j->wb, NULL, j->M, j->K, j->N, j->scratch); }
static void run_i8(job *j) { linear_i8_forward(j->out, j->x, j->wq, j->ws, j->wsum, NULL, j->M, j->K, j->N, j->scratch); }
static void run_i8_dnnl(job *j)
{
    linear_i8_forward_rows(j->out, j->x, j->wq, j->ws, j->wsum, j->wd, NULL, j->M, j->K, j->N, j->scratch);
}
static void run_dnnl(job *j) { onednn_run(j->o); }

static double gflops(void (*fn)(job *), job *j)
{
    double best = 1e30;
    for (int rep = 0; rep < 9; rep++) {
        int n = 0;
        double t0 = now(), t;
        do {
            fn(j);
            n++;
            t = now() - t0;
        } while (t < 0.04);
        if (t / n < best)
            best = t / n;
    }
    return 2.0 * j->M * j->N * j->K / best * 1e-9;
}

int main(int argc, char **argv)
{
    static const int mnk[][3] = {{1, 256, 256},  {1, 768, 256},  {1, 1024, 256}, {1, 256, 1024}, {1, 8000, 256},
                                 {8, 1024, 256}, {32, 1024, 256}, {32, 256, 1024}, {32, 8000, 256}, {128, 1024, 256},
                                 {128, 256, 1024}, {128, 8000, 256}, {3000, 1024, 256}, {3000, 256, 1024}};
    int nthreads[8] = {1, 2}, nt = 2;
    if (argc > 1) {
        nt = 0;
        for (int i = 1; i < argc && nt < 8; i++)
            nthreads[nt++] = atoi(argv[i]);
    }
    CK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    CK(dnnl_stream_create(&strm, eng, dnnl_stream_default_flags));
    char info[2048];
    qkv_system_info(info, sizeof info);
    const dnnl_version_t *dv = dnnl_version();
    printf("%sonednn %d.%d.%d (cpu runtime %u)\n", info, dv->major, dv->minor, dv->patch, dv->cpu_runtime);
    printf("GFLOP/s; qkv i8 and bf16 include quantizing / rounding the activations\n");
    printf("%-3s %5s %5s %5s | %8s %8s %8s %8s | %8s %8s %8s | %s\n", "thr", "M", "N", "K", "qkv f32", "qkv bf16",
           "qkv i8", "i8 dnnl", "dnnl f32", "dnnl bf16", "dnnl u8s8", "i8: qkv/dnnl");
    for (int t = 0; t < nt; t++) {
        /* qkv's kernels run on a context of that many threads; oneDNN on
         * its OpenMP runtime, capped the same way */
        qkv_context_options co = qkv_context_default_options();
        co.threads = nthreads[t];
        qkv_context *ctx = NULL;
        if (qkv_context_new(&co, &ctx) != QKV_OK) {
            fprintf(stderr, "quant_linear: %s\n", qkv_last_error());
            return 1;
        }
        ctx_bind(ctx);
        dnnl_set_num_threads_(nthreads[t]);
        for (size_t s = 0; s < sizeof mnk / sizeof mnk[0]; s++) {
            job j = {.M = mnk[s][0], .N = mnk[s][1], .K = mnk[s][2]};
            size_t MK = (size_t)j.M * j.K, NK = (size_t)j.N * j.K;
            j.x = malloc(MK * 4), j.w = malloc(NK * 4), j.out = malloc((size_t)j.M * j.N * 4);
            for (size_t i = 0; i < MK; i++)
                j.x[i] = (float)((i * 7919) % 1000) / 500.0f - 1;
            for (size_t i = 0; i < NK; i++)
                j.w[i] = (float)((i * 104729) % 1000) / 5000.0f - 0.1f;
            j.wp = malloc(linear_packed_floats(j.K, j.N) * 4);
            linear_pack(j.wp, j.w, j.K, j.N);
            j.wq = malloc(linear_i8_weight_bytes(j.K, j.N));
            j.ws = malloc(linear_i8_panel_floats(j.N) * 4);
            j.wsum = malloc(linear_i8_panel_floats(j.N) * 4);
            j.wrows = malloc(NK);
            quantize_rows_s8(j.wrows, j.ws, j.w, j.N, j.K, j.K);
            linear_i8_pack_quantized(j.wq, j.ws, j.wsum, j.wrows, j.ws, j.K, j.N);
            j.wb = malloc(linear_bf16_weight_elems(j.K, j.N) * 2);
            linear_bf16_pack(j.wb, j.w, j.K, j.N);
            size_t sb = linear_i8_scratch_bytes(j.M, j.K), sb2 = linear_bf16_scratch_bytes(j.M, j.K);
            j.scratch = malloc(sb > sb2 ? sb : sb2);
            double g[7];
            g[0] = gflops(run_f32, &j);
            g[1] = gflops(run_bf16, &j);
            g[2] = gflops(run_i8, &j);
            linear_i8_onednn_force(1);
            j.wd = linear_i8_onednn_pack(j.wrows, j.K, j.N);
            g[6] = j.wd ? gflops(run_i8_dnnl, &j) : 0;
            linear_i8_onednn_weight_free(j.wd);
            linear_i8_onednn_force(-1);
            /* oneDNN inputs in its types */
            uint16_t *xb = malloc(MK * 2), *wbb = malloc(NK * 2);
            float_to_bf16(xb, j.x, MK);
            float_to_bf16(wbb, j.w, NK);
            uint8_t *xu = malloc(MK);
            int8_t *wi = malloc(NK);
            for (size_t i = 0; i < MK; i++)
                xu[i] = (uint8_t)(j.x[i] * 100 + 128);
            for (size_t i = 0; i < NK; i++)
                wi[i] = (int8_t)(j.w[i] * 1000);
            const dnnl_data_type_t at[3] = {dnnl_f32, dnnl_bf16, dnnl_u8}, bt[3] = {dnnl_f32, dnnl_bf16, dnnl_s8};
            void *ab[3] = {j.x, xb, xu};
            const void *bb[3] = {j.w, wbb, wi};
            for (int d = 0; d < 3; d++) {
                onednn_mm o;
                if (!onednn_make(&o, j.M, j.N, j.K, at[d], bt[d], ab[d], bb[d], j.out)) {
                    g[3 + d] = 0;
                    continue;
                }
                j.o = &o;
                g[3 + d] = gflops(run_dnnl, &j);
                onednn_free(&o);
            }
            printf("%-3d %5d %5d %5d | %8.1f %8.1f %8.1f %8.1f | %8.1f %8.1f %8.1f | %.2f\n", nthreads[t], j.M, j.N,
                   j.K, g[0], g[1], g[2], g[6], g[3], g[4], g[5], g[5] > 0 ? g[2] / g[5] : 0);
            fflush(stdout);
            free(xb), free(wbb), free(xu), free(wi);
            free(j.x), free(j.w), free(j.out), free(j.wp), free(j.wq), free(j.wrows), free(j.ws), free(j.wsum), free(j.wb);
            free(j.scratch);
        }
        ctx_bind(NULL);
        qkv_context_free(ctx);
    }
    return 0;
}
