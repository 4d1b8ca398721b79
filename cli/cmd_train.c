/* qkv train: parallel text in, a translation model out.
 *
 *   qkv train --src F --tgt F [--valid-src F --valid-tgt F] --out DIR
 *             [--preset tiny|small|base | --config FILE.json]
 *             [--src-vocab M.model --tgt-vocab M.model] [--time-budget MINUTES]
 *             [--max-steps N] [--batch-tokens N] [--threads N] [--seed N] [--resume]
 *             [--snapshot-minutes 10,20,30]
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
#include "decode/search.h"
#include "model/model.h"
#include "qkv.h"
#include "train/trainer.h"

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
    "  --threads N --seed N --resume\n";

typedef struct {
    const char *src, *tgt, *valid_src, *valid_tgt, *out, *preset, *config, *src_vocab, *tgt_vocab, *schedule;
    double snapshot_minutes[QKV_TRAIN_MAX_SNAPSHOTS];
    int n_snapshots;
    double time_budget_min, lr, clip, weight_decay, label_smoothing, dropout;
    long long max_steps, batch_tokens, seed, warmup, valid_every;
    int threads, resume, accum, patience, max_len, vocab_size, joint_vocab, protect;
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
    a->accum = a->patience = a->max_len = a->vocab_size = -1;
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
    return 0;
}

/* A preset: model shape and training recipe.
 * small: the reference recipe our PyTorch comparison trains (see README). */
typedef struct {
    const char *name;
    int d_model, heads, d_ff, layers;
    int pre_norm;
    int vocab_size;
    double lr;
    int warmup;
    int batch_tokens;
    float dropout;
} preset;

static const preset presets[] = {
    {"tiny", 64, 2, 256, 2, 1, 1000, 3e-3, 100, 1000, 0.1f},
    {"small", 256, 4, 1024, 3, 1, 8000, 1e-3, 400, 3000, 0.1f},
    {"base", 512, 8, 2048, 6, 0, 8000, 0 /* the paper's */, 4000, 4096, 0.1f},
    /* make demo: the small model with a recipe for minutes of CPU time
     * (smaller vocabularies, higher peak rate, short warmup; see README) */
    {"demo", 256, 4, 1024, 3, 1, 4000, 2e-3, 150, 1500, 0.0f},
};

static const preset *find_preset(const char *name)
{
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (!strcmp(presets[i].name, name))
            return &presets[i];
    return NULL;
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

/* Trains PREFIX.model unless it exists (a resumed run reuses it). */
static int train_vocab(const char *const *inputs, int n, int size, const char *prefix, int protect)
{
    char path[4096];
    snprintf(path, sizeof path, "%s.model", prefix);
    if (file_exists(path))
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

struct dev_scorer_s;
typedef struct {
    int tty;
    double last_print;
    struct dev_scorer_s *dev; /* dev BLEU/chrF at validations, or NULL */
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

/* ---- dev BLEU and chrF ----------------------------------------------------- */

/* Validation translates (greedy) up to DEV_SCORE_MAX dev sentences and scores
 * them against the dev references with sacreBLEU's rules. */
#define DEV_SCORE_MAX 500

typedef struct dev_scorer_s {
    const qkv_parallel *dev;
    const qkv_vocab *tgt_vocab;
    char **refs; /* reference text of each kept dev pair */
    int n;
    int **src;   /* source ids + EOS */
    int *src_len;
    qkv_bleu_tokenizer tok;
} dev_scorer;

static int has_cjk(const char *s)
{
    /* UTF-8 lead bytes 0xE3..0xE9 cover U+3000..U+9FFF (CJK punctuation, kana, ideographs) */
    for (; *s; s++)
        if ((unsigned char)*s >= 0xE3 && (unsigned char)*s <= 0xE9)
            return 1;
    return 0;
}

/* Reads the dev target lines again, keeping those of the pairs the reader
 * kept (pair.line is 1-based). */
static int dev_scorer_init(dev_scorer *d, const qkv_parallel *dev, const char *tgt_path, const qkv_vocab *tv)
{
    memset(d, 0, sizeof *d);
    d->dev = dev;
    d->tgt_vocab = tv;
    d->n = dev->n_pairs < DEV_SCORE_MAX ? (int)dev->n_pairs : DEV_SCORE_MAX;
    char *text;
    size_t len;
    if (qkv_read_file(tgt_path, &text, &len) != QKV_OK)
        return cli_error("%s", qkv_last_error());
    d->refs = calloc((size_t)d->n, sizeof *d->refs);
    d->src = calloc((size_t)d->n, sizeof *d->src);
    d->src_len = calloc((size_t)d->n, sizeof *d->src_len);
    int64_t line = 1, k = 0, cjk = 0;
    char *p = text;
    while (k < d->n && p < text + len) {
        char *e = strchr(p, '\n');
        if (!e)
            e = text + len;
        if (line == dev->pairs[k].line) {
            size_t n = (size_t)(e - p);
            if (n && p[n - 1] == '\r')
                n--;
            d->refs[k] = strndup(p, n);
            cjk += has_cjk(d->refs[k]);
            const qkv_pair *q = &dev->pairs[k];
            d->src_len[k] = q->src_len + 1;
            d->src[k] = malloc((size_t)d->src_len[k] * sizeof(int));
            memcpy(d->src[k], dev->ids + q->off, (size_t)q->src_len * sizeof(int));
            d->src[k][q->src_len] = dev->src_eos;
            k++;
        }
        line++;
        p = e + 1;
    }
    free(text);
    d->n = (int)k;
    d->tok = cjk * 2 > k ? QKV_TOK_ZH : QKV_TOK_13A;
    return 0;
}

static void dev_scorer_free(dev_scorer *d)
{
    for (int i = 0; i < d->n; i++) {
        free(d->refs[i]);
        free(d->src[i]);
    }
    free(d->refs);
    free(d->src);
    free(d->src_len);
}

static qkv_status score_dev(void *ctx, const qkv_model *m, double *bleu, double *chrf)
{
    dev_scorer *d = ((progress *)ctx)->dev;
    const qkv_model_config *c = qkv_model_get_config(m);
    search_params p;
    memset(&p, 0, sizeof p);
    p.beam_size = p.n_best = 1;
    p.temperature = p.top_p = p.alpha = p.repetition_penalty = 1;
    p.max_length = c->max_positions + 1;
    p.max_length_ratio = 2;
    p.max_length_offset = 10;
    int prompt = c->decoder_start_id;
    p.prompt = &prompt;
    p.prompt_len = 1;
    p.eos_id = c->eos_id;
    p.batch_size = 64;
    search_result *res = calloc((size_t)d->n, sizeof *res);
    char **hyps = calloc((size_t)d->n, sizeof *hyps);
    if (!res || !hyps) {
        free(res);
        free(hyps);
        return QKV_ERR_NOMEM;
    }
    qkv_status s = search_run(m, &p, (const int *const *)d->src, d->src_len, d->n, res);
    for (int i = 0; s == QKV_OK && i < d->n; i++) {
        size_t len;
        const search_hyp *h = res[i].n_hyps ? &res[i].hyps[0] : NULL;
        /* ids beyond the SentencePiece model (an appended pad) decode to nothing */
        int *ids = malloc(((h ? h->n : 0) + 1) * sizeof(int)), n = 0;
        for (int j = 0; h && j < h->n; j++)
            if (h->ids[j] < qkv_vocab_size(d->tgt_vocab))
                ids[n++] = h->ids[j];
        s = qkv_vocab_decode(d->tgt_vocab, ids, (size_t)n, &hyps[i], &len);
        free(ids);
    }
    if (s == QKV_OK) {
        const char *const *refs[1] = {(const char *const *)d->refs};
        qkv_bleu_options bo = qkv_bleu_default_options();
        bo.tokenize = d->tok;
        qkv_bleu_result br;
        qkv_chrf_options co = qkv_chrf_default_options();
        qkv_chrf_result cr;
        s = qkv_bleu((const char *const *)hyps, refs, d->n, 1, &bo, &br);
        if (s == QKV_OK)
            s = qkv_chrf((const char *const *)hyps, refs, d->n, 1, &co, &cr);
        if (s == QKV_OK) {
            *bleu = br.score;
            *chrf = cr.score;
        }
    }
    search_results_free(res, d->n);
    for (int i = 0; i < d->n; i++)
        free(hyps[i]);
    free(hyps);
    return s;
}

/* ---- the command ---------------------------------------------------------- */


/* mkdir -p: creates dir and its missing parents; 0 when dir exists after. */
static int make_dirs(const char *dir)
{
    char p[4096];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *c = p + 1; *c; c++)
        if (*c == '/') {
            *c = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST)
                return -1;
            *c = '/';
        }
    if (mkdir(p, 0777) != 0 && errno != EEXIST)
        return -1;
    struct stat st;
    if (stat(p, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

int cmd_train(int argc, char **argv)
{
    train_args a;
    if (parse_args(argc, argv, &a))
        return 1;
    qkv_set_threads(a.threads);
    const preset *pr = find_preset(a.preset ? a.preset : "small");
    if (!pr)
        return cli_error("--preset: expected tiny, small, base or demo, got '%s'", a.preset);
    if (make_dirs(a.out) != 0)
        return cli_error("%s: cannot create the output directory: %s", a.out, strerror(errno));
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
            if (train_vocab(in, 2, vocab_size, src_prefix, a.protect))
                return 1;
            snprintf(src_model, sizeof src_model, "%s.model", src_prefix);
            src_vocab_path = tgt_vocab_path = src_model;
        } else {
            snprintf(src_prefix, sizeof src_prefix, "%s/src", a.out);
            snprintf(tgt_prefix, sizeof tgt_prefix, "%s/tgt", a.out);
            if (train_vocab(&a.src, 1, vocab_size, src_prefix, a.protect) ||
                train_vocab(&a.tgt, 1, vocab_size, tgt_prefix, a.protect))
                return 1;
            snprintf(src_model, sizeof src_model, "%s.model", src_prefix);
            snprintf(tgt_model, sizeof tgt_model, "%s.model", tgt_prefix);
            src_vocab_path = src_model;
            tgt_vocab_path = tgt_model;
        }
    }
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
    /* Special ids come from the target vocabulary; a target vocabulary
     * without <pad> gets one more id for it, as Marian does, past both
     * vocabularies (the pad rows are frozen: no real piece may share the id). */
    int eos = qkv_vocab_eos_id(tv), src_eos = qkv_vocab_eos_id(sv);
    if (eos < 0 || src_eos < 0) {
        cli_error("%s: the vocabulary has no </s> piece; train it with an eos id", eos < 0 ? tgt_vocab_path
                                                                                           : src_vocab_path);
        goto done;
    }
    int src_size = qkv_vocab_size(sv), tgt_size = qkv_vocab_size(tv);
    int pad = qkv_vocab_pad_id(tv);
    if (pad < 0) {
        pad = src_size > tgt_size ? src_size : tgt_size;
        tgt_size = pad + 1;
    }
    if (src_size <= pad)
        src_size = pad + 1;
    int bos = qkv_vocab_bos_id(tv);

    qkv_model_config cfg;
    if (a.config) {
        if (qkv_config_from_file(a.config, &cfg) != QKV_OK) {
            cli_error("%s", qkv_last_error());
            goto done;
        }
    } else {
        cfg = qkv_model_default_config();
        cfg.d_model = pr->d_model;
        cfg.encoder_heads = cfg.decoder_heads = pr->heads;
        cfg.encoder_d_ff = cfg.decoder_d_ff = pr->d_ff;
        cfg.encoder_layers = cfg.decoder_layers = pr->layers;
        cfg.norm = pr->pre_norm ? QKV_NORM_PRE : QKV_NORM_POST;
        cfg.final_norm = pr->pre_norm;
        cfg.activation = QKV_ACT_RELU;
        cfg.positions = QKV_POS_SINUSOIDAL;
        cfg.scale_embedding = 1;
        cfg.tie_output_embeddings = 1;
        cfg.dropout = pr->dropout;
    }
    if (a.dropout >= 0)
        cfg.dropout = (float)a.dropout;
    int max_len = a.max_len > 0 ? a.max_len : 128;
    if (max_len > cfg.max_positions)
        max_len = cfg.max_positions;
    cfg.src_vocab_size = src_size;
    cfg.tgt_vocab_size = tgt_size;
    cfg.shared_vocab = shared;
    cfg.pad_id = pad;
    cfg.eos_id = eos;
    cfg.bos_id = bos >= 0 ? bos : pad;
    /* Marian's convention: the decoder starts from pad, whose embedding rows
     * training keeps at zero (model_zero_pad_rows), so the first input is
     * the position encoding alone, as in Marian and CTranslate2's Marian
     * models (start_from_zero_embedding); exported, the model converts
     * with the stock ct2-transformers-converter. */
    cfg.decoder_start_id = pad;
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
    po.src_eos = src_eos;
    po.tgt_bos = cfg.decoder_start_id;
    po.tgt_eos = eos;
    po.max_len = max_len;
    po.src_vocab_size = cfg.src_vocab_size;
    po.tgt_vocab_size = cfg.tgt_vocab_size;
    qkv_parallel_stats st;
    fprintf(stderr, "qkv train: reading %s and %s\n", a.src, a.tgt);
    if (qkv_parallel_read(&train, a.src, a.tgt, &po, &st) != QKV_OK) {
        cli_error("%s", qkv_last_error());
        goto done;
    }
    fprintf(stderr, "qkv train: %lld pairs kept of %lld lines (%lld empty, %lld longer than %d tokens dropped; "
                    "%lld source and %lld target tokens)\n",
            (long long)st.kept, (long long)st.lines, (long long)st.empty, (long long)st.too_long, max_len,
            (long long)st.src_tokens, (long long)st.tgt_tokens);
    if (st.invalid_utf8)
        fprintf(stderr, "qkv train: warning: %lld lines hold invalid UTF-8 (read as U+FFFD)\n",
                (long long)st.invalid_utf8);
    if (a.valid_src) {
        po.max_len = cfg.max_positions;
        if (qkv_parallel_read(&dev, a.valid_src, a.valid_tgt, &po, &st) != QKV_OK) {
            cli_error("%s", qkv_last_error());
            goto done;
        }
        fprintf(stderr, "qkv train: dev set: %lld pairs\n", (long long)st.kept);
    }

    qkv_batcher_options bo = qkv_batcher_default_options();
    bo.batch_tokens = a.batch_tokens > 0 ? (int)a.batch_tokens : pr->batch_tokens;
    bo.pad_id = cfg.pad_id;
    qkv_train_options to = qkv_train_default_options();
    to.seed = seed;
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
    if (to.n_snapshots && to.time_budget_s > 0 && 60.0 * a.snapshot_minutes[a.n_snapshots - 1] > to.time_budget_s)
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
        fprintf(stderr, "qkv train: resuming %s at step %lld\n", ckpt_path, (long long)qkv_trainer_step(tr));
    }
    fprintf(stderr, "qkv train: %zu parameters, d_model %d, %d+%d layers, %d threads -> %s\n",
            qkv_model_num_params(model), cfg.d_model, cfg.encoder_layers, cfg.decoder_layers, qkv_get_threads(),
            a.out);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    dev_scorer ds;
    memset(&ds, 0, sizeof ds);
    if (a.valid_src && dev_scorer_init(&ds, &dev, a.valid_tgt, tv))
        goto done;
    progress pg = {isatty(2), -1e9, a.valid_src ? &ds : NULL};
    qkv_train_hooks hooks = {&pg, on_report, a.valid_src ? score_dev : NULL, &stop_requested};
    qkv_status s = qkv_trainer_run(tr, &hooks);
    dev_scorer_free(&ds);
    if (pg.tty)
        fputc('\n', stderr);
    if (s != QKV_OK) {
        cli_error("%s", qkv_last_error());
        goto done;
    }
    for (int i = 0; i < a.n_snapshots; i++) {
        char snap[4200];
        snprintf(snap, sizeof snap, "%s/minute-%g.qkv", a.out, a.snapshot_minutes[i]);
        if (!file_exists(snap))
            fprintf(stderr, "qkv train: warning: training ended before %g minutes: no %s\n", a.snapshot_minutes[i],
                    snap);
    }
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
