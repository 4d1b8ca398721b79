/* qkv train: parallel text in, a translation model out.
 *
 *   qkv train --src F --tgt F [--valid-src F --valid-tgt F] --out DIR
 *             [--preset tiny|small|base | --config FILE.json]
 *             [--src-vocab M.model --tgt-vocab M.model] [--time-budget MINUTES]
 *             [--max-steps N] [--batch-tokens N] [--threads N] [--seed N] [--resume]
 *             [--snapshot-minutes 10,20,30] [--precision auto|fp32|bf16]
 *             and the finer options listed by --help. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/io.h"
#include "commands.h"
#include "protect_args.h"
#include "text/protect.h"
#include "data/batch.h"
#include "data/parallel.h"
#include "model/model.h"
#include "qkv.h"
#include "train/dev_score.h"
#include "train/recipe.h"
#include "train/trainer.h"
#include "dist/mpi.h"

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static const char usage[] =
    "usage: qkv train --src F --tgt F --out DIR [options]\n"
    "  DIR (made with its parents if missing) receives model.qkv, checkpoint.qkv and log.jsonl\n"
    "  --valid-src F --valid-tgt F   dev pair: validation, best-model tracking\n"
    "  --preset tiny|small|base|demo model and recipe (default small)\n"
    "  --config FILE.json            model configuration instead of a preset\n"
    "  --src-vocab M --tgt-vocab M   SentencePiece models (default: trained into DIR)\n"
    "  --vocab-size N                size of vocabularies trained here (preset's)\n"
    "  --joint-vocab                 train one vocabulary on both sides\n"
    "  --protect                     mask placeholders and tags into sentinels (DIR/protected.*), add the\n"
    "                                sentinels to the vocabularies trained here: qkv translate then keeps\n"
    "                                every placeholder of a line exactly once\n"
    "  --time-budget MINUTES         stop cleanly after this much training time\n"
    "  --snapshot-minutes M1,M2,...  also write DIR/minute-M.qkv at the first step boundary where the\n"
    "                                training time reaches M minutes (the model --time-budget M would\n"
    "                                end with; 0: the initial model); writing them is not counted\n"
    "  --max-steps N                 stop after N updates\n"
    "  --batch-tokens N              sentences x longest padded side per batch\n"
    "  --accum N                     batches per update (gradient accumulation)\n"
    "  --lr X --warmup N             peak learning rate and warmup steps\n"
    "  --schedule inverse-sqrt|constant|cosine\n"
    "  --clip X --weight-decay X --label-smoothing X --dropout X\n"
    "  --max-len N                   drop pairs longer than N tokens (default 128)\n"
    "  --valid-every N --patience N  validation interval (steps), early stopping\n"
    "  --threads N --seed N --resume\n"
    "  --precision auto|fp32|bf16    bf16: the linear layers' products (forward and backward, output layer\n"
    "                                included) take bf16 operands with fp32 sums; weights, gradients, Adam\n"
    "                                moments, softmax, layer norm and the loss stay fp32. Needs native bf16\n"
    "                                products (AVX512-BF16 or AMX-BF16), else an error. fp32: the default.\n"
    "                                auto: fp32 without native bf16; with it, the model's feed-forward\n"
    "                                products (forward, input and weight gradients) are timed\n"
    "                                in both precisions before the first step and bf16 is taken if at least\n"
    "                                10% faster. A resumed auto run keeps the checkpoint's precision. The\n"
    "                                choice is printed and logged (log.jsonl, checkpoint.qkv)\n"
    "  under mpirun (data parallel: N ranks = --accum N on one process, see README):\n"
    "  --overlap 0|1                 reduce a layer's gradients while the backward goes on (default 1)\n";

typedef struct {
    const char *src, *tgt, *valid_src, *valid_tgt, *out, *preset, *config, *src_vocab, *tgt_vocab, *schedule;
    const char *precision;
    double snapshot_minutes[QKV_TRAIN_MAX_SNAPSHOTS];
    int n_snapshots;
    double time_budget_min, lr, clip, weight_decay, label_smoothing, dropout;
    long long max_steps, batch_tokens, seed, warmup, valid_every;
    int threads, resume, accum, patience, max_len, vocab_size, joint_vocab, overlap, protect;
} train_args;

static int parse_num(const char *opt, const char *s, double lo, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= lo) || !isfinite(v))
        return cli_error("%s: expected a number >= %g, got '%s'", opt, lo, s);
    *out = v;
    return 0;
}

/* "10,20,30": increasing numbers >= 0 (the trainer checks again). */
static int parse_marks(const char *s, train_args *a)
{
    const char *p = s;
    a->n_snapshots = 0;
    for (;;) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || (*end && *end != ',') || !(v >= 0) || !isfinite(v))
            return cli_error("--snapshot-minutes: expected numbers >= 0 separated by commas, got '%s'", s);
        if (a->n_snapshots == QKV_TRAIN_MAX_SNAPSHOTS)
            return cli_error("--snapshot-minutes: at most %d marks, got more in '%s'", QKV_TRAIN_MAX_SNAPSHOTS, s);
        if (a->n_snapshots > 0 && !(v > a->snapshot_minutes[a->n_snapshots - 1]))
            return cli_error("--snapshot-minutes: marks must increase, got %g after %g in '%s'", v,
                             a->snapshot_minutes[a->n_snapshots - 1], s);
        a->snapshot_minutes[a->n_snapshots++] = v;
        if (!*end)
            return 0;
        p = end + 1;
    }
}

static int parse_args(int argc, char **argv, train_args *a)
{
    memset(a, 0, sizeof *a);
    a->time_budget_min = a->lr = a->clip = a->weight_decay = a->label_smoothing = a->dropout = -1;
    a->max_steps = a->batch_tokens = a->seed = a->warmup = a->valid_every = -1;
    a->accum = a->patience = a->max_len = a->vocab_size = a->overlap = -1;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            fputs(usage, stdout);
            exit(0);
        }
        if (!strcmp(o, "--resume")) {
            a->resume = 1;
            continue;
        }
        if (!strcmp(o, "--joint-vocab")) {
            a->joint_vocab = 1;
            continue;
        }
        if (!strcmp(o, "--protect")) {
            a->protect = 1;
            continue;
        }
        if (i + 1 >= argc)
            return cli_error("%s needs a value (see qkv train --help)", o);
        const char *v = argv[++i];
        double d = 0;
        const char **sp = NULL;
        if (!strcmp(o, "--src")) sp = &a->src;
        else if (!strcmp(o, "--tgt")) sp = &a->tgt;
        else if (!strcmp(o, "--valid-src")) sp = &a->valid_src;
        else if (!strcmp(o, "--valid-tgt")) sp = &a->valid_tgt;
        else if (!strcmp(o, "--out")) sp = &a->out;
        else if (!strcmp(o, "--preset")) sp = &a->preset;
        else if (!strcmp(o, "--config")) sp = &a->config;
        else if (!strcmp(o, "--src-vocab")) sp = &a->src_vocab;
        else if (!strcmp(o, "--tgt-vocab")) sp = &a->tgt_vocab;
        else if (!strcmp(o, "--schedule")) sp = &a->schedule;
        else if (!strcmp(o, "--precision")) sp = &a->precision;
        if (sp) {
            *sp = v;
            continue;
        }
        if (!strcmp(o, "--snapshot-minutes")) {
            if (parse_marks(v, a))
                return 1;
            continue;
        }
        if (parse_num(o, v, 0, &d))
            return 1;
        if (!strcmp(o, "--time-budget")) a->time_budget_min = d;
        else if (!strcmp(o, "--lr")) a->lr = d;
        else if (!strcmp(o, "--clip")) a->clip = d;
        else if (!strcmp(o, "--weight-decay")) a->weight_decay = d;
        else if (!strcmp(o, "--label-smoothing")) a->label_smoothing = d;
        else if (!strcmp(o, "--dropout")) a->dropout = d;
        else if (d != floor(d)) return cli_error("%s: expected an integer, got '%s'", o, v);
        else if (!strcmp(o, "--max-steps")) a->max_steps = (long long)d;
        else if (!strcmp(o, "--batch-tokens")) a->batch_tokens = (long long)d;
        else if (!strcmp(o, "--seed")) a->seed = (long long)d;
        else if (!strcmp(o, "--warmup")) a->warmup = (long long)d;
        else if (!strcmp(o, "--valid-every")) a->valid_every = (long long)d;
        else if (!strcmp(o, "--threads")) a->threads = (int)d;
        else if (!strcmp(o, "--accum")) a->accum = (int)d;
        else if (!strcmp(o, "--patience")) a->patience = (int)d;
        else if (!strcmp(o, "--max-len")) a->max_len = (int)d;
        else if (!strcmp(o, "--vocab-size")) a->vocab_size = (int)d;
        else if (!strcmp(o, "--overlap")) a->overlap = (int)d;
        else return cli_error("unknown option '%s' (see qkv train --help)", o);
    }
    if (!a->src || !a->tgt || !a->out)
        return cli_error("--src, --tgt and --out are required (see qkv train --help)");
    if (!a->valid_src != !a->valid_tgt)
        return cli_error("--valid-src and --valid-tgt go together");
    if (!a->src_vocab != !a->tgt_vocab)
        return cli_error("--src-vocab and --tgt-vocab go together");
    if (a->preset && a->config)
        return cli_error("--preset and --config exclude each other");
    if (a->precision && strcmp(a->precision, "auto") && strcmp(a->precision, "fp32") && strcmp(a->precision, "bf16"))
        return cli_error("--precision: expected auto, fp32 or bf16, got '%s'", a->precision);
    const char *why;
    if (a->precision && !strcmp(a->precision, "bf16") && !qkv_bf16_native(&why))
        return cli_error("--precision bf16: this CPU has no native bf16 products (%s); bf16 training needs "
                         "AVX512-BF16 or AMX-BF16: use --precision fp32 or auto", why);
    return 0;
}

/* ---- vocabularies --------------------------------------------------------- */

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static void vocab_progress(void *ctx, const char *line)
{
    (void)ctx;
    fprintf(stderr, "\r\033[K  %s", line);
}

/* Trains PREFIX.model unless it exists (a resumed run reuses it); in a
 * distributed run rank 0 alone trains (the others wait at a barrier after). */
static int train_vocab(const char *const *inputs, int n, int size, const char *prefix, int quiet, int protect)
{
    char path[4096];
    snprintf(path, sizeof path, "%s.model", prefix);
    if (quiet || file_exists(path))
        return 0;
    fprintf(stderr, "qkv train: training a %d-piece unigram vocabulary on %s%s -> %s\n", size, inputs[0],
            n > 1 ? " and the other side" : "", path);
    qkv_vocab_train_options vo = qkv_vocab_train_default_options();
    vo.vocab_size = size;
    vo.unk_id = 0;
    vo.bos_id = 1;
    vo.eos_id = 2;
    vo.pad_id = 3;
    const char *sym[PROTECT_MAX];
    char sym_buf[PROTECT_MAX][4];
    if (protect) {
        for (int k = 0; k < PROTECT_MAX; k++) {
            protect_sentinel(k, sym_buf[k]);
            sym[k] = sym_buf[k];
        }
        vo.user_defined_symbols = sym;
        vo.n_user_defined_symbols = PROTECT_MAX;
    }
    if (isatty(2)) {
        vo.progress = vocab_progress;
    }
    qkv_status s = qkv_vocab_train(&vo, inputs, n, prefix);
    if (isatty(2))
        fputs("\r\033[K", stderr);
    if (s != QKV_OK)
        return cli_error("vocabulary training failed: %s (a small corpus may need a smaller --vocab-size)",
                         qkv_last_error());
    return 0;
}

static int encode_cb(void *ctx, const char *text, size_t len, int *ids, int max_ids)
{
    int *out = NULL;
    size_t n = 0;
    if (qkv_vocab_encode(ctx, text, len, &out, &n, NULL) != QKV_OK)
        return -1;
    for (size_t i = 0; i < n && (int)i < max_ids; i++)
        ids[i] = out[i];
    free(out);
    return (int)n;
}

/* ---- progress ------------------------------------------------------------- */

typedef struct {
    int tty;
    double last_print;
} progress;

static void fmt_time(char *buf, size_t n, double s)
{
    if (s < 0) {
        snprintf(buf, n, "--:--:--");
        return;
    }
    long t = (long)(s + 0.5);
    snprintf(buf, n, "%02ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

static void on_report(void *ctx, const qkv_train_report *r)
{
    progress *p = ctx;
    char el[32], rem[32];
    fmt_time(el, sizeof el, r->elapsed_s);
    fmt_time(rem, sizeof rem, r->remaining_s);
    if (r->is_snapshot) {
        if (p->tty)
            fputs("\r\033[K", stderr);
        fprintf(stderr, "snapshot minute-%g.qkv: step %lld, %lld target tokens, %s of training\n",
                r->snapshot_minutes, (long long)r->step, (long long)r->tgt_tokens, el);
        return;
    }
    if (r->is_validation) {
        if (p->tty)
            fputs("\r\033[K", stderr);
        fprintf(stderr, "valid step %lld: dev loss %.4f ppl %.2f", (long long)r->step, r->dev_loss, r->dev_ppl);
        if (r->dev_bleu >= 0)
            fprintf(stderr, " BLEU %.2f chrF %.2f", r->dev_bleu, r->dev_chrf);
        fprintf(stderr, "%s\n", r->is_best ? " (best)" : "");
        return;
    }
    if (p->tty) {
        fprintf(stderr, "\r\033[Kstep %lld | epoch %lld | loss %.4f | lr %.2e | %.0f tgt tok/s | %s elapsed | %s left",
                (long long)r->step, (long long)r->epoch + 1, r->loss, r->lr, r->tgt_tokens_per_s, el, rem);
        fflush(stderr);
    } else if (r->elapsed_s - p->last_print >= 10 || r->step == 1) {
        fprintf(stderr, "step %lld epoch %lld loss %.4f lr %.2e tgt_tok/s %.0f elapsed %s left %s\n",
                (long long)r->step, (long long)r->epoch + 1, r->loss, r->lr, r->tgt_tokens_per_s, el, rem);
        p->last_print = r->elapsed_s;
    }
}

/* ---- the command ---------------------------------------------------------- */

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL; /* FNV-1a */
    return h;
}

/* Exit status of a rank whose error rank 0 reported for it. */
#define RC_REPORTED 3

/* A bad launch (ranks given other options or files) is found before the
 * first step: every rank's fingerprints are gathered and compared with rank
 * 0's. Returns 0 when all agree; else rank 0 prints what differs on which
 * rank and returns 1, the others RC_REPORTED. */
static int check_same_job(qkv_dist *d, int argc, char **argv, const qkv_trainer *tr, const qkv_model *m,
                          const qkv_data_position *pos)
{
    enum { ARGS, CORPUS, OPTIONS, PARAMS, N_FP };
    uint64_t fp[N_FP], h = 0xcbf29ce484222325ULL;
    for (int i = 1; i < argc; i++)
        h = hash_bytes(h, argv[i], strlen(argv[i]) + 1);
    fp[ARGS] = h;
    fp[CORPUS] = pos->corpus_hash;
    fp[OPTIONS] = pos->options_hash;
    fp[PARAMS] = hash_bytes(0xcbf29ce484222325ULL, m->params, m->num_params * sizeof(float));
    (void)tr;
    int world = qkv_dist_world(d), bad = 0;
    uint64_t *all = malloc((size_t)world * sizeof fp);
    if (!all)
        return cli_error("out of memory");
    if (qkv_dist_allgather(d, fp, sizeof fp, all) != QKV_OK) {
        free(all);
        return cli_error("%s", qkv_last_error());
    }
    static const char *what[N_FP] = {
        "was started with other options than rank 0 (the command lines differ)",
        "read another training corpus than rank 0 (different --src/--tgt contents, vocabularies or --max-len)",
        "has other batching options than rank 0",
        "starts from other parameters than rank 0 (another --seed or checkpoint)",
    };
    for (int r = 1; r < world; r++)
        for (int k = 0; k < N_FP; k++)
            if (all[(size_t)r * N_FP + k] != all[k]) {
                if (qkv_dist_rank(d) == 0)
                    cli_error("bad launch: rank %d of %d %s; every rank must run the same qkv train command on "
                              "the same files", r, world, what[k]);
                bad = qkv_dist_rank(d) == 0 ? 1 : RC_REPORTED;
            }
    free(all);
    return bad;
}

static int train_on(const train_args *args, int argc, char **argv, qkv_dist *dist, qkv_context *ctx);

static int train_main(int argc, char **argv, qkv_dist *dist)
{
    train_args a;
    if (parse_args(argc, argv, &a))
        return 1;
    qkv_context_options co = qkv_context_default_options();
    co.threads = a.threads > 0 ? a.threads : 0;
    qkv_context *ctx = NULL;
    if (qkv_context_new(&co, &ctx) != QKV_OK)
        return cli_error("%s", qkv_last_error());
    int rc = train_on(&a, argc, argv, dist, ctx);
    qkv_context_free(ctx);
    return rc;
}

/* The training job on its execution context. */
static int train_on(const train_args *args, int argc, char **argv, qkv_dist *dist, qkv_context *ctx)
{
    train_args a = *args;
    int rank = dist ? qkv_dist_rank(dist) : 0, world = dist ? qkv_dist_world(dist) : 1;
    int quiet = rank != 0; /* rank 0 alone reports */
    const qkv_train_preset *pr = qkv_train_find_preset(a.preset ? a.preset : "small");
    if (!pr)
        return cli_error("--preset: expected tiny, small, base or demo, got '%s'", a.preset);
    if (qkv_make_dirs(a.out) != QKV_OK)
        return cli_error("cannot create the output directory: %s", qkv_last_error());
    char ckpt_path[4096];
    snprintf(ckpt_path, sizeof ckpt_path, "%s/checkpoint.qkv", a.out);
    if (!a.resume && file_exists(ckpt_path))
        return cli_error("%s exists: pass --resume to continue that run, or choose another --out", ckpt_path);
    if (a.resume && !file_exists(ckpt_path))
        return cli_error("--resume: %s does not exist", ckpt_path);

    /* --protect: the pairs with sentinels for placeholders, into DIR */
    char p_src[4200], p_tgt[4200], p_vsrc[4200], p_vtgt[4200];
    if (a.protect) {
        snprintf(p_src, sizeof p_src, "%s/protected.train.src", a.out);
        snprintf(p_tgt, sizeof p_tgt, "%s/protected.train.tgt", a.out);
        if (protect_mask_files(a.src, a.tgt, p_src, p_tgt))
            return 1;
        a.src = p_src;
        a.tgt = p_tgt;
        if (a.valid_src && a.valid_tgt) {
            snprintf(p_vsrc, sizeof p_vsrc, "%s/protected.valid.src", a.out);
            snprintf(p_vtgt, sizeof p_vtgt, "%s/protected.valid.tgt", a.out);
            if (protect_mask_files(a.valid_src, a.valid_tgt, p_vsrc, p_vtgt))
                return 1;
            a.valid_src = p_vsrc;
            a.valid_tgt = p_vtgt;
        }
    }
    /* Vocabularies: given, or trained into DIR (separate per side unless --joint-vocab). */
    char src_prefix[4096], tgt_prefix[4096], src_model[4200], tgt_model[4200];
    const char *src_vocab_path = a.src_vocab, *tgt_vocab_path = a.tgt_vocab;
    int vocab_size = a.vocab_size > 0 ? a.vocab_size : pr->vocab_size;
    if (!src_vocab_path) {
        if (a.joint_vocab) {
            snprintf(src_prefix, sizeof src_prefix, "%s/vocab", a.out);
            const char *in[2] = {a.src, a.tgt};
            if (train_vocab(in, 2, vocab_size, src_prefix, quiet, a.protect))
                return 1;
            snprintf(src_model, sizeof src_model, "%s.model", src_prefix);
            src_vocab_path = tgt_vocab_path = src_model;
        } else {
            snprintf(src_prefix, sizeof src_prefix, "%s/src", a.out);
            snprintf(tgt_prefix, sizeof tgt_prefix, "%s/tgt", a.out);
            if (train_vocab(&a.src, 1, vocab_size, src_prefix, quiet, a.protect) ||
                train_vocab(&a.tgt, 1, vocab_size, tgt_prefix, quiet, a.protect))
                return 1;
            snprintf(src_model, sizeof src_model, "%s.model", src_prefix);
            snprintf(tgt_model, sizeof tgt_model, "%s.model", tgt_prefix);
            src_vocab_path = src_model;
            tgt_vocab_path = tgt_model;
        }
    }
    if (dist && !a.src_vocab && qkv_dist_barrier(dist) != QKV_OK)
        return cli_error("%s", qkv_last_error());
    int shared = !strcmp(src_vocab_path, tgt_vocab_path);
    qkv_vocab *sv = NULL, *tv = NULL;
    char *sblob = NULL, *tblob = NULL;
    size_t sblob_len = 0, tblob_len = 0;
    int rc = 1;
    qkv_model *model = NULL;
    qkv_parallel train, dev;
    memset(&train, 0, sizeof train);
    memset(&dev, 0, sizeof dev);
    qkv_trainer *tr = NULL;
    void *ckpt_handle = NULL;

    if (qkv_vocab_load(src_vocab_path, &sv) != QKV_OK ||
        (!shared && qkv_vocab_load(tgt_vocab_path, &tv) != QKV_OK) ||
        qkv_read_file(src_vocab_path, &sblob, &sblob_len) != QKV_OK ||
        (!shared && qkv_read_file(tgt_vocab_path, &tblob, &tblob_len) != QKV_OK)) {
        cli_error("%s", qkv_last_error());
        goto done;
    }
    if (shared)
        tv = sv;
    qkv_train_vocab_ids ids;
    if (qkv_train_vocab_policy(sv, tv, src_vocab_path, tgt_vocab_path, &ids) != QKV_OK) {
        cli_error("%s", qkv_last_error());
        goto done;
    }

    qkv_model_config cfg;
    if (a.config) {
        if (qkv_config_from_file(a.config, &cfg) != QKV_OK) {
            cli_error("%s", qkv_last_error());
            goto done;
        }
    } else {
        cfg = qkv_train_preset_config(pr);
    }
    if (a.dropout >= 0)
        cfg.dropout = (float)a.dropout;
    int max_len = a.max_len > 0 ? a.max_len : 128;
    if (max_len > cfg.max_positions)
        max_len = cfg.max_positions;
    qkv_train_apply_vocab_ids(&cfg, &ids);
    uint64_t seed = a.seed >= 0 ? (uint64_t)a.seed : 1;

    if (a.resume) {
        qkv_vocab_blobs ignored;
        if (qkv_checkpoint_load_model(ckpt_path, &model, &ignored, &ckpt_handle) != QKV_OK) {
            cli_error("%s", qkv_last_error());
            goto done;
        }
    } else if (qkv_model_new(&cfg, seed, &model) != QKV_OK) {
        cli_error("%s", qkv_last_error());
        goto done;
    }
    cfg = *qkv_model_get_config(model);

    qkv_parallel_options po = qkv_parallel_default_options();
    po.encode_src = encode_cb;
    po.src_ctx = sv;
    po.encode_tgt = encode_cb;
    po.tgt_ctx = tv;
    po.src_eos = ids.src_eos_id;
    po.tgt_bos = cfg.decoder_start_id;
    po.tgt_eos = ids.eos_id;
    po.max_len = max_len;
    po.src_vocab_size = cfg.src_vocab_size;
    po.tgt_vocab_size = cfg.tgt_vocab_size;
    qkv_parallel_stats st;
    if (!quiet)
        fprintf(stderr, "qkv train: reading %s and %s\n", a.src, a.tgt);
    if (qkv_parallel_read(&train, a.src, a.tgt, &po, &st) != QKV_OK) {
        cli_error("%s", qkv_last_error());
        goto done;
    }
    if (!quiet)
        fprintf(stderr, "qkv train: %lld pairs kept of %lld lines (%lld empty, %lld longer than %d tokens dropped; "
                    "%lld source and %lld target tokens)\n",
            (long long)st.kept, (long long)st.lines, (long long)st.empty, (long long)st.too_long, max_len,
            (long long)st.src_tokens, (long long)st.tgt_tokens);
    if (st.invalid_utf8 && !quiet)
        fprintf(stderr, "qkv train: warning: %lld lines hold invalid UTF-8 (read as U+FFFD)\n",
                (long long)st.invalid_utf8);
    if (a.valid_src) {
        po.max_len = cfg.max_positions;
        if (qkv_parallel_read(&dev, a.valid_src, a.valid_tgt, &po, &st) != QKV_OK) {
            cli_error("%s", qkv_last_error());
            goto done;
        }
        if (!quiet)
            fprintf(stderr, "qkv train: dev set: %lld pairs\n", (long long)st.kept);
    }

    qkv_batcher_options bo = qkv_batcher_default_options();
    bo.batch_tokens = a.batch_tokens > 0 ? (int)a.batch_tokens : pr->batch_tokens;
    bo.pad_id = cfg.pad_id;
    qkv_train_options to = qkv_train_default_options();
    to.context = ctx;
    to.seed = seed;
    to.precision = !a.precision || !strcmp(a.precision, "fp32") ? QKV_PRECISION_FP32
                   : !strcmp(a.precision, "bf16")              ? QKV_PRECISION_BF16
                                                               : QKV_PRECISION_AUTO;

    to.schedule.warmup_steps = a.warmup >= 0 ? a.warmup : pr->warmup;
    to.schedule.peak_lr = a.lr > 0 ? a.lr
                          : pr->lr > 0 ? pr->lr
                                       : qkv_schedule_paper_peak(cfg.d_model, to.schedule.warmup_steps);
    if (a.schedule && qkv_schedule_parse_kind(a.schedule, &to.schedule.kind) != QKV_OK) {
        cli_error("--schedule: %s", qkv_last_error());
        goto done;
    }
    if (a.clip >= 0)
        to.clip_norm = (float)a.clip;
    if (a.weight_decay >= 0)
        to.weight_decay = (float)a.weight_decay;
    if (a.label_smoothing >= 0)
        to.label_smoothing = (float)a.label_smoothing;
    if (a.accum > 0)
        to.accum = a.accum;
    if (a.max_steps >= 0)
        to.max_steps = a.max_steps;
    to.rank = rank;
    to.world = world;
    if (a.time_budget_min >= 0)
        to.time_budget_s = a.time_budget_min * 60.0;
    if (to.schedule.kind == QKV_LR_COSINE) {
        if (!to.max_steps) {
            cli_error("--schedule cosine needs --max-steps (the step that reaches the final rate)");
            goto done;
        }
        to.schedule.total_steps = to.max_steps;
    }
    to.valid_every = a.valid_src ? (a.valid_every >= 0 ? a.valid_every : 500) : 0;
    if (a.patience >= 0)
        to.patience = a.patience;
    memcpy(to.snapshot_minutes, a.snapshot_minutes, sizeof to.snapshot_minutes);
    to.n_snapshots = a.n_snapshots;
    if (!quiet && to.n_snapshots && to.time_budget_s > 0 && 60.0 * a.snapshot_minutes[a.n_snapshots - 1] > to.time_budget_s)
        fprintf(stderr, "qkv train: warning: --snapshot-minutes %g is past --time-budget %g: not reached\n",
                a.snapshot_minutes[a.n_snapshots - 1], a.time_budget_min);
    qkv_vocab_blobs blobs = {sblob, sblob_len, shared ? NULL : tblob, shared ? 0 : tblob_len};
    if (qkv_trainer_new(&tr, model, &train, a.valid_src ? &dev : NULL, &bo, &to, &blobs, a.out) != QKV_OK) {
        cli_error("%s", qkv_last_error());
        goto done;
    }
    if (a.resume) {
        if (qkv_trainer_resume(tr, ckpt_path) != QKV_OK) {
            cli_error("%s", qkv_last_error());
            goto done;
        }
        if (!quiet)
            fprintf(stderr, "qkv train: resuming %s at step %lld\n", ckpt_path, (long long)qkv_trainer_step(tr));
    }
    if (dist) {
        qkv_data_position pos;
        qkv_trainer_data_position(tr, &pos);
        if ((rc = check_same_job(dist, argc, argv, tr, model, &pos)) != 0)
            goto done;
        rc = 1;
    }
    if (!quiet)
        fprintf(stderr, "qkv train: %zu parameters, d_model %d, %d+%d layers, %d threads%s -> %s\n",
                qkv_model_num_params(model), cfg.d_model, cfg.encoder_layers, cfg.decoder_layers, qkv_context_threads(ctx),
                dist ? " per rank" : "", a.out);
    if (!quiet && dist)
        fprintf(stderr, "qkv train: %d ranks x --accum %d: %d micro-batches per update\n", world, to.accum,
                world * to.accum);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    qkv_dev_scorer *ds = NULL;
    if (a.valid_src && rank == 0 && qkv_dev_scorer_new(&ds, &dev, a.valid_tgt, tv, QKV_DEV_SCORE_MAX) != QKV_OK) {
        cli_error("%s", qkv_last_error());
        goto done;
    }
    progress pg = {isatty(2) && !quiet, -1e9};
    qkv_train_hooks hooks;
    memset(&hooks, 0, sizeof hooks);
    hooks.ctx = &pg;
    hooks.on_report = on_report;
    hooks.score_dev = ds ? qkv_dev_scorer_score : NULL;
    hooks.score_ctx = ds;
    hooks.stop = &stop_requested;
    if (dist) {
        qkv_dist_set_hooks(dist, &hooks);
        qkv_dist_set_overlap(dist, &hooks, a.overlap != 0);
    }
    qkv_precision used;
    const char *why;
    if (qkv_trainer_precision(tr, &hooks, &used, &why) != QKV_OK) {
        cli_error("%s", qkv_last_error());
        goto done;
    }
    if (!quiet)
        fprintf(stderr, "qkv train: precision %s (%s)\n", qkv_precision_name(used), why);
    qkv_status s = qkv_trainer_run(tr, &hooks);
    qkv_dev_scorer_free(ds);
    if (pg.tty)
        fputc('\n', stderr);
    if (s != QKV_OK) {
        cli_error("%s", qkv_last_error());
        goto done;
    }
    for (int i = 0; i < a.n_snapshots && !quiet; i++) {
        char snap[4200];
        snprintf(snap, sizeof snap, "%s/minute-%g.qkv", a.out, a.snapshot_minutes[i]);
        if (!file_exists(snap))
            fprintf(stderr, "qkv train: warning: training ended before %g minutes: no %s\n", a.snapshot_minutes[i],
                    snap);
    }
    if (!quiet && dist)
        fprintf(stderr, "qkv train: rank 0 spent %.3f s in the gradient reduction (waiting for it: %.3f s)\n",
                qkv_dist_comm_seconds(dist), qkv_dist_reduce_seconds(dist));
    if (!quiet)
        fprintf(stderr, "qkv train: %s at step %lld; model: %s/model.qkv, log: %s/log.jsonl\n",
            stop_requested ? "stopped by signal" : "finished", (long long)qkv_trainer_step(tr), a.out, a.out);
    rc = 0;
done:
    qkv_trainer_free(tr);
    qkv_parallel_free(&train);
    qkv_parallel_free(&dev);
    qkv_model_free(model);
    qkv_checkpoint_release(ckpt_handle);
    if (tv != sv)
        qkv_vocab_free(tv);
    qkv_vocab_free(sv);
    free(sblob);
    free(tblob);
    return rc;
}

int cmd_train(int argc, char **argv)
{
    if (!qkv_dist_launched())
        return train_main(argc, argv, NULL);
    /* started by mpirun: one rank of a data-parallel job (see dist/mpi.h) */
    qkv_dist *d;
    if (qkv_dist_init(&d) != QKV_OK)
        return cli_error("%s", qkv_last_error());
    int rc = train_main(argc, argv, d);
    if (rc == RC_REPORTED)
        qkv_dist_abort(d, 1);
    if (rc != 0) {
        /* the other ranks may be waiting for this one in a collective */
        fprintf(stderr, "qkv: error: rank %d of %d stopped (the error above); ending the job\n", qkv_dist_rank(d),
                qkv_dist_world(d));
        fflush(stderr);
        qkv_dist_abort(d, rc);
    }
    qkv_dist_free(d);
    return 0;
}
