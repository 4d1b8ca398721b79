#include "base/context.h"
#include "train/trainer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/io.h"
#include "base/rng.h"
#include "base/status.h"
#include "kernels/kernels.h"
#include "kernels/vec_add.h"
#include "model/model.h"
#include "train/checkpoint.h"
#include "train/precision.h"
#include "train/recipe.h"
#include "train/trainer_impl.h"

qkv_train_options qkv_train_default_options(void)
{
    qkv_train_options o;
    memset(&o, 0, sizeof o);
    o.schedule = qkv_schedule_default_options();
    o.beta1 = 0.9f;
    o.beta2 = 0.98f;
    o.eps = 1e-9f;
    o.weight_decay = 0.0f;
    o.clip_norm = 1.0f;
    o.label_smoothing = 0.1f;
    o.accum = 1;
    o.patience = 0;
    o.keep_checkpoints = 5;
    o.seed = 1;
    o.rank = 0;
    o.world = 1;
    o.precision = QKV_PRECISION_FP32;
    return o;
}

qkv_status qkv_train_validate_options(const qkv_train_options *o)
{
    QKV_TRY(qkv_schedule_validate(&o->schedule));
    if (!(o->beta1 >= 0 && o->beta1 < 1))
        return qkv_fail(QKV_ERR_CONFIG, "training option 'beta1': %g, expected in [0, 1)", o->beta1);
    if (!(o->beta2 >= 0 && o->beta2 < 1))
        return qkv_fail(QKV_ERR_CONFIG, "training option 'beta2': %g, expected in [0, 1)", o->beta2);
    if (!(o->eps > 0))
        return qkv_fail(QKV_ERR_CONFIG, "training option 'eps': %g, expected > 0", o->eps);
    if (!(o->weight_decay >= 0))
        return qkv_fail(QKV_ERR_CONFIG, "training option 'weight_decay': %g, expected >= 0", o->weight_decay);
    if (!(o->clip_norm >= 0))
        return qkv_fail(QKV_ERR_CONFIG, "training option 'clip_norm': %g, expected >= 0 (0: off)", o->clip_norm);
    if (!(o->label_smoothing >= 0 && o->label_smoothing < 1))
        return qkv_fail(QKV_ERR_CONFIG, "training option 'label_smoothing': %g, expected in [0, 1)",
                        o->label_smoothing);
    if (o->accum < 1)
        return qkv_fail(QKV_ERR_CONFIG, "training option 'accum': %d, expected >= 1", o->accum);
    if (o->max_steps < 0 || o->valid_every < 0 || o->patience < 0 || o->keep_checkpoints < 0 ||
        !(o->time_budget_s >= 0))
        return qkv_fail(QKV_ERR_CONFIG, "training options: max_steps, time budget, valid_every, patience and "
                                        "keep_checkpoints must not be negative");
    if (o->world < 1 || o->rank < 0 || o->rank >= o->world)
        return qkv_fail(QKV_ERR_CONFIG, "training options 'rank', 'world': %d, %d; expected 0 <= rank < world",
                        o->rank, o->world);
    if (o->n_snapshots < 0 || o->n_snapshots > QKV_TRAIN_MAX_SNAPSHOTS)
        return qkv_fail(QKV_ERR_CONFIG, "training option 'n_snapshots': %d, expected 0 to %d", o->n_snapshots,
                        QKV_TRAIN_MAX_SNAPSHOTS);
    for (int i = 0; i < o->n_snapshots; i++) {
        double m = o->snapshot_minutes[i];
        if (!(m >= 0 && isfinite(m)) || (i > 0 && !(m > o->snapshot_minutes[i - 1])))
            return qkv_fail(QKV_ERR_CONFIG, "training option 'snapshot_minutes': mark %d is %g, expected a finite "
                                            "number >= 0 and above the one before", i + 1, m);
    }
    return QKV_OK;
}



static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int imax(int a, int b) { return a > b ? a : b; }

qkv_status qkv_trainer_new(qkv_trainer **out, qkv_model *model, const qkv_parallel *train,
                           const qkv_parallel *dev, const qkv_batcher_options *batching,
                           const qkv_train_options *opt, const qkv_vocab_blobs *vocab, const char *out_dir)
{
    *out = NULL;
    QKV_TRY(qkv_train_validate_options(opt));
    QKV_TRY(train_precision_check(opt->precision));
    QKV_TRY(qkv_make_dirs(out_dir));
    qkv_trainer *t = calloc(1, sizeof *t);
    if (!t)
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    t->opt = *opt;
    t->model = model;
    t->dev = dev;
    t->vocab = *vocab;
    t->n_params = qkv_model_num_params(model);
    t->best_score = -INFINITY;
    t->best_step = -1;
    t->view = opt->context ? *opt->context : (qkv_context){.threads = 1};
    t->view.bf16 = opt->precision == QKV_PRECISION_BF16;
    t->used = opt->precision;
    snprintf(t->why, sizeof t->why, "%s as asked", qkv_precision_name(opt->precision));
    t->batch_tokens = batching->batch_tokens;
    qkv_status s = QKV_OK;
    t->dir = strdup(out_dir);
    t->root = opt->rank == 0;
    size_t n_micro = (size_t)opt->world * (size_t)opt->accum;
    t->m = calloc(t->n_params, sizeof(float));
    t->v = calloc(t->n_params, sizeof(float));
    t->acc = opt->accum > 1 ? malloc(t->n_params * sizeof(float)) : NULL;
    t->micro = calloc(n_micro, sizeof *t->micro);
    t->losses = calloc(n_micro, sizeof *t->losses);
    if (!t->dir || !t->m || !t->v || (opt->accum > 1 && !t->acc) || !t->micro || !t->losses) {
        s = qkv_fail(QKV_ERR_NOMEM, "cannot allocate the optimizer state (%zu parameters)", t->n_params);
        goto fail;
    }
    qkv_batcher_options bo = *batching;
    bo.shuffle = 1;
    bo.seed = opt->seed;
    bo.keep = opt->accum; /* the micro-batches of one update stay valid together */
    bo.rank = opt->rank;
    bo.world = opt->world;
    bo.share = opt->accum;
    if ((s = qkv_batcher_new(&t->train_b, train, &bo)) != QKV_OK)
        goto fail;
    qkv_batch_limits lim = qkv_batcher_limits(t->train_b);
    if (dev && dev->n_pairs > 0) {
        qkv_batcher_options dbo = *batching;
        dbo.shuffle = 0;
        dbo.sort_by_length = 1;
        if ((s = qkv_batcher_new(&t->dev_b, dev, &dbo)) != QKV_OK)
            goto fail;
        qkv_batch_limits dl = qkv_batcher_limits(t->dev_b);
        lim.max_rows = imax(lim.max_rows, dl.max_rows);
        lim.max_src_len = imax(lim.max_src_len, dl.max_src_len);
        lim.max_tgt_len = imax(lim.max_tgt_len, dl.max_tgt_len);
        if (dl.max_src_cells > lim.max_src_cells)
            lim.max_src_cells = dl.max_src_cells;
        if (dl.max_tgt_cells > lim.max_tgt_cells)
            lim.max_tgt_cells = dl.max_tgt_cells;
    }
    model_state_limits ml = {lim.max_rows, lim.max_src_len, lim.max_tgt_len, lim.max_src_cells, lim.max_tgt_cells};
    if ((s = model_state_new_limits(model, &ml, 1, &t->state)) != QKV_OK)
        goto fail;
    if (!t->root) {
        *out = t;
        return QKV_OK;
    }
    char *log_path = qkv_path_join(out_dir, "log.jsonl");
    t->log = log_path ? fopen(log_path, "a") : NULL;
    if (!t->log) {
        s = qkv_fail(QKV_ERR_IO, "%s: cannot open for appending: %s", log_path ? log_path : out_dir,
                     strerror(errno));
        free(log_path);
        goto fail;
    }
    free(log_path);
    *out = t;
    return QKV_OK;
fail:
    qkv_trainer_free(t);
    return s;
}

void qkv_trainer_free(qkv_trainer *t)
{
    if (!t)
        return;
    if (t->log)
        fclose(t->log);
    model_state_free(t->state);
    qkv_batcher_free(t->train_b);
    qkv_batcher_free(t->dev_b);
    free(t->m);
    free(t->v);
    free(t->acc);
    free(t->micro);
    free(t->losses);
    free(t->dir);
    free(t);
}

int64_t qkv_trainer_step(const qkv_trainer *t) { return t->step; }

void qkv_trainer_data_position(const qkv_trainer *t, qkv_data_position *pos) { qkv_batcher_tell(t->train_b, pos); }

/* ---- the loop ------------------------------------------------------------- */

/* Without validation, checkpoint.qkv is still refreshed this often. */
#define TRAIN_SAVE_INTERVAL_S 600.0

/* Resident memory now, in MB (Linux /proc; 0 elsewhere): logged each step
 * so that growth over a long run shows in the log. */
static double rss_mb(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return (double)resident * (double)sysconf(_SC_PAGESIZE) / 1048576.0;
}

static void log_report(qkv_trainer *t, const qkv_train_report *r)
{
    if (r->is_validation) {
        fprintf(t->log,
                "{\"step\": %lld, \"epoch\": %lld, \"valid\": true, \"dev_loss\": %.6g, \"dev_ppl\": %.6g",
                (long long)r->step, (long long)r->epoch, r->dev_loss, r->dev_ppl);
        if (r->dev_bleu >= 0)
            fprintf(t->log, ", \"dev_bleu\": %.4f, \"dev_chrf\": %.4f", r->dev_bleu, r->dev_chrf);
        fprintf(t->log, ", \"best\": %s, \"elapsed_s\": %.3f}\n", r->is_best ? "true" : "false", r->elapsed_s);
    } else {
        fprintf(t->log,
                "{\"step\": %lld, \"epoch\": %lld, \"loss\": %.6g, \"lr\": %.6g, \"grad_norm\": %.6g, "
                "\"tgt_tokens\": %lld, \"tgt_tokens_per_s\": %.1f, \"elapsed_s\": %.3f, \"rss_mb\": %.1f}\n",
                (long long)r->step, (long long)r->epoch, r->loss, r->lr, r->grad_norm, (long long)r->tgt_tokens,
                r->tgt_tokens_per_s, r->elapsed_s, rss_mb());
    }
    fflush(t->log);
}

/* Next training batch, crossing into the next epoch when one ends. */
static void next_batch(qkv_trainer *t, qkv_batch *b)
{
    if (!qkv_batcher_next(t->train_b, b)) {
        int ok = qkv_batcher_next(t->train_b, b);
        (void)ok; /* the corpus is not empty (checked by the batcher), so an epoch has a batch */
    }
    t->last_epoch = b->epoch;
}

static model_batch as_model_batch(const qkv_batch *b)
{
    model_batch mb = {b->B, b->S, b->T, b->src, b->src_len, b->tgt_in, b->tgt_len, b->labels};
    return mb;
}

/* Dev loss: mean over all dev target tokens (no dropout, no smoothing, so
 * perplexity = exp(loss)). */
static qkv_status dev_loss(qkv_trainer *t, double *loss)
{
    model_forward_options fo = model_default_forward_options();
    fo.label_smoothing = 0;
    fo.dropout = 0;
    double sum = 0;
    int64_t tokens = 0;
    qkv_batch b;
    while (qkv_batcher_next(t->dev_b, &b)) {
        model_batch mb = as_model_batch(&b);
        float l;
        QKV_TRY(model_forward(t->state, &mb, &fo, &l));
        sum += (double)l * (double)b.tgt_tokens;
        tokens += b.tgt_tokens;
    }
    *loss = tokens ? sum / (double)tokens : 0;
    return QKV_OK;
}

static qkv_status save_step_model(qkv_trainer *t)
{
    if (t->opt.keep_checkpoints <= 0)
        return QKV_OK;
    char name[64];
    snprintf(name, sizeof name, "step-%lld.qkv", (long long)t->step);
    char *p = qkv_path_join(t->dir, name);
    if (!p)
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    qkv_status s = qkv_checkpoint_save_model(p, t->model, &t->vocab);
    free(p);
    /* Keep only the newest keep_checkpoints files: remove the one that fell out. */
    int64_t old = t->step - (int64_t)t->opt.keep_checkpoints * (t->opt.valid_every ? t->opt.valid_every : 1);
    if (s == QKV_OK && old > 0) {
        snprintf(name, sizeof name, "step-%lld.qkv", (long long)old);
        if ((p = qkv_path_join(t->dir, name))) {
            remove(p);
            free(p);
        }
    }
    return s;
}

/* Writes minute-<M>.qkv for every mark from *next on that elapsed has
 * reached (a step boundary: the model of the updates done so far) and
 * returns in *spent the seconds it took, which the caller leaves out of
 * the training time. */
static qkv_status write_due_snapshots(qkv_trainer *t, const qkv_train_hooks *h, double elapsed, int *next,
                                      double *spent)
{
    const qkv_train_options *o = &t->opt;
    double t0 = now_s();
    qkv_status s = QKV_OK;
    while (s == QKV_OK && *next < o->n_snapshots && elapsed >= 60.0 * o->snapshot_minutes[*next]) {
        char name[64];
        snprintf(name, sizeof name, "minute-%g.qkv", o->snapshot_minutes[*next]);
        char *p = qkv_path_join(t->dir, name);
        if (!p)
            return qkv_fail(QKV_ERR_NOMEM, "out of memory");
        s = qkv_checkpoint_save_model(p, t->model, &t->vocab);
        free(p);
        if (s != QKV_OK)
            break;
        fprintf(t->log,
                "{\"step\": %lld, \"epoch\": %lld, \"snapshot\": \"%s\", \"tgt_tokens\": %lld, "
                "\"elapsed_s\": %.3f}\n",
                (long long)t->step, (long long)t->last_epoch, name, (long long)t->tgt_tokens, elapsed);
        fflush(t->log);
        if (h && h->on_report) {
            qkv_train_report r;
            memset(&r, 0, sizeof r);
            r.step = t->step;
            r.epoch = t->last_epoch;
            r.elapsed_s = elapsed;
            r.tgt_tokens = t->tgt_tokens;
            r.tgt_tokens_per_s = elapsed > 0 ? (double)t->tgt_tokens / elapsed : 0;
            r.remaining_s = -1;
            r.is_snapshot = 1;
            r.snapshot_minutes = o->snapshot_minutes[*next];
            h->on_report(h->ctx, &r);
        }
        (*next)++;
    }
    *spent = now_s() - t0;
    return s;
}

static qkv_status validate(qkv_trainer *t, const qkv_train_hooks *h, void *score_ctx, double elapsed,
                           qkv_train_report *r)
{
    r->is_validation = 1;
    r->dev_bleu = r->dev_chrf = -1;
    QKV_TRY(dev_loss(t, &r->dev_loss));
    r->dev_ppl = exp(r->dev_loss);
    if (h && h->score_dev)
        QKV_TRY(h->score_dev(score_ctx, t->model, &r->dev_bleu, &r->dev_chrf));
    /* Best = highest dev chrF (it moves earlier than BLEU in a short run),
     * ties (e.g. both 0 at the start) broken by the lower dev loss. */
    double score = (r->dev_chrf >= 0 ? 100.0 * r->dev_chrf : 0.0) - r->dev_loss;
    r->is_best = score > t->best_score;
    if (r->is_best) {
        t->best_score = score;
        t->best_step = t->step;
        t->bad_validations = 0;
        char *p = qkv_path_join(t->dir, "model.qkv");
        if (!p)
            return qkv_fail(QKV_ERR_NOMEM, "out of memory");
        qkv_status s = qkv_checkpoint_save_model(p, t->model, &t->vocab);
        free(p);
        QKV_TRY(s);
    } else {
        t->bad_validations++;
    }
    r->elapsed_s = elapsed;
    return save_step_model(t);
}

static model_forward_options train_forward_options(const qkv_trainer *t, int64_t step, int micro,
                                                   int64_t micro_tokens, int64_t tokens)
{
    const qkv_train_options *o = &t->opt;
    model_forward_options fo = model_default_forward_options();
    fo.label_smoothing = o->label_smoothing;
    fo.dropout = 1;
    /* a function of the update and the micro-batch's place in it, whichever rank runs it */
    fo.seed = qkv_splitmix64(o->seed ^ qkv_splitmix64((uint64_t)step * 1024 + (uint64_t)micro));
    /* Every micro-batch's loss is a mean over its tokens; weighting it by
     * its share of the update's tokens makes the update's gradient that
     * of the mean over all of them, as one large batch would give. */
    fo.loss_scale = tokens ? (float)micro_tokens / (float)tokens : 0.0f;
    return fo;
}

static qkv_status train_step(qkv_trainer *t, const qkv_train_hooks *hooks, qkv_train_report *r);

/* Resolves auto (on the bound view, in fp32 until chosen); with world > 1
 * rank 0's choice is broadcast (every rank calls this at the same point). */
static qkv_status resolve_precision(qkv_trainer *t, const qkv_train_hooks *hooks)
{
    if (t->used != QKV_PRECISION_AUTO)
        return QKV_OK;
    const qkv_model_config *c = qkv_model_get_config(t->model);
    QKV_TRY(train_precision_auto(c->d_model, c->encoder_d_ff, t->batch_tokens, &t->used, t->why, sizeof t->why));
    if (t->opt.world > 1) {
        if (!hooks || !hooks->broadcast_flags)
            return qkv_fail(QKV_ERR_ARG, "trainer: world %d needs the broadcast_flags hook", t->opt.world);
        int flag = (int)t->used;
        QKV_TRY(hooks->broadcast_flags(hooks->dist_ctx, &flag));
        if (flag != (int)t->used)
            snprintf(t->why, sizeof t->why, "%s, as rank 0 chose", qkv_precision_name((qkv_precision)flag));
        t->used = (qkv_precision)flag;
    }
    t->view.bf16 = t->used == QKV_PRECISION_BF16;
    return QKV_OK;
}

qkv_status qkv_trainer_precision(qkv_trainer *t, const qkv_train_hooks *hooks, qkv_precision *used,
                                 const char **why)
{
    qkv_context *prev = ctx_bind(&t->view);
    qkv_status s = resolve_precision(t, hooks);
    ctx_bind(prev);
    *used = t->used;
    if (why)
        *why = t->why;
    return s;
}

/* Both entry points run on the options' context (its precision view),
 * bound to this thread. */
qkv_status qkv_trainer_train_step(qkv_trainer *t, const qkv_train_hooks *hooks, qkv_train_report *r)
{
    qkv_context *prev = ctx_bind(&t->view);
    qkv_status s = resolve_precision(t, hooks);
    if (s == QKV_OK)
        s = train_step(t, hooks, r);
    ctx_bind(prev);
    return s;
}

static qkv_status train_step(qkv_trainer *t, const qkv_train_hooks *hooks, qkv_train_report *r)
{
    const qkv_train_options *o = &t->opt;
    int world = o->world, accum = o->accum, n_micro = world * accum, first = o->rank * accum;
    float *grads = model_grads(t->state);
    int64_t step = t->step + 1;
    int64_t tokens = 0;
    for (int a = 0; a < n_micro; a++) {
        next_batch(t, &t->micro[a]);
        tokens += t->micro[a].tgt_tokens;
    }
    /* This rank's micro-batches: each gradient from zero, summed in order
     * (acc = (g0 + g1) + g2 ...), so that the sum over all micro-batches of
     * the update has the same order however they are spread over ranks. */
    float *g = accum > 1 ? t->acc : grads;
    float *mine = t->losses + first;
    for (int a = 0; a < accum; a++) {
        const qkv_batch *b = &t->micro[first + a];
        model_batch mb = as_model_batch(b);
        model_forward_options fo = train_forward_options(t, step, first + a, b->tgt_tokens, tokens);
        model_zero_grads(t->state);
        QKV_TRY(model_forward(t->state, &mb, &fo, &mine[a]));
        int overlap = world > 1 && accum == 1 && hooks->reduce_begin && hooks->reduce_ready;
        if (overlap) {
            QKV_TRY(hooks->reduce_begin(hooks->dist_ctx, grads, t->n_params));
            model_set_grads_ready(t->state, hooks->reduce_ready, hooks->dist_ctx);
        }
        qkv_status bs = model_backward(t->state);
        model_set_grads_ready(t->state, NULL, NULL);
        if (bs != QKV_OK) {
            if (overlap) /* let the reduction finish: the other ranks are in it */
                hooks->reduce_grads(hooks->dist_ctx, g, t->n_params);
            return bs;
        }
        if (accum > 1) {
            if (a == 0)
                memcpy(t->acc, grads, t->n_params * sizeof(float));
            else
                vec_add(t->acc, grads, t->n_params);
        }
    }
    if (world > 1) {
        QKV_TRY(hooks->reduce_grads(hooks->dist_ctx, g, t->n_params));
        float *copy = malloc((size_t)accum * sizeof *copy);
        if (!copy)
            return qkv_fail(QKV_ERR_NOMEM, "out of memory");
        memcpy(copy, mine, (size_t)accum * sizeof *copy);
        qkv_status s = hooks->allgather(hooks->dist_ctx, copy, (size_t)accum * sizeof *copy, t->losses);
        free(copy);
        QKV_TRY(s);
    }
    double loss_sum = 0;
    for (int a = 0; a < n_micro; a++)
        loss_sum += (double)t->losses[a] * (double)t->micro[a].tgt_tokens;
    model_zero_pad_rows(t->model, g); /* the pad rows are frozen: see model.h */
    double norm = sqrt(global_norm_sq(g, t->n_params));
    if (!isfinite(norm) || !isfinite(loss_sum))
        return qkv_fail(QKV_ERR_ARG, "step %lld: the gradient is not finite (loss %g): lower the learning rate",
                        (long long)step, loss_sum);
    /* clipped: g * c inside the update (g itself is left unscaled) */
    float c = o->clip_norm > 0 && norm > o->clip_norm ? (float)(o->clip_norm / (norm + 1e-6)) : 1.0f;
    double lr = qkv_schedule_lr(&o->schedule, step);
    adamw_update_scaled(t->model->params, t->m, t->v, g, c, t->n_params, (float)lr, o->beta1, o->beta2, o->eps,
                        o->weight_decay, (int)step);
    t->step = step;
    t->tgt_tokens += tokens;
    memset(r, 0, sizeof *r);
    r->step = step;
    r->epoch = t->last_epoch;
    r->loss = tokens ? loss_sum / (double)tokens : 0;
    r->lr = lr;
    r->grad_norm = norm;
    r->tgt_tokens = t->tgt_tokens;
    return QKV_OK;
}

/* What rank 0 decides for everyone at an update boundary. */
enum { FLAG_STOP = 1, FLAG_SAVE = 2 };

static qkv_status trainer_run(qkv_trainer *t, const qkv_train_hooks *hooks);

qkv_status qkv_trainer_run(qkv_trainer *t, const qkv_train_hooks *hooks)
{
    qkv_context *prev = ctx_bind(&t->view);
    qkv_status s = resolve_precision(t, hooks);
    if (s == QKV_OK)
        s = trainer_run(t, hooks);
    ctx_bind(prev);
    return s;
}

static qkv_status trainer_run(qkv_trainer *t, const qkv_train_hooks *hooks)
{
    const qkv_train_options *o = &t->opt;
    if (o->world > 1 && (!hooks || !hooks->reduce_grads || !hooks->allgather || !hooks->broadcast_flags))
        return qkv_fail(QKV_ERR_ARG, "trainer: world %d needs the reduce_grads, allgather and broadcast_flags hooks",
                        o->world);
    void *score_ctx = hooks && hooks->score_ctx ? hooks->score_ctx : hooks ? hooks->ctx : NULL;
    double start = now_s();
    qkv_status s = QKV_OK;
    int64_t first_step = t->step;
    if (t->root) { /* the plot reads numbers only: this line adds no curve */
        fprintf(t->log, "{\"step\": %lld, \"precision\": \"%s\", \"precision_choice\": \"%s\"}\n",
                (long long)t->step, qkv_precision_name(t->used), t->why);
        fflush(t->log);
    }
    double last_save = start;
    /* marks an earlier run (resumed from) has passed are done */
    int next_snapshot = 0;
    while (t->step > 0 && next_snapshot < o->n_snapshots &&
           60.0 * o->snapshot_minutes[next_snapshot] <= t->elapsed_prev)
        next_snapshot++;
    for (;;) {
        double elapsed = t->elapsed_prev + (now_s() - start), spent = 0;
        /* before the stop test: the mark equal to the time budget is written
         * at the boundary where that budget stops the run */
        if (t->root && (s = write_due_snapshots(t, hooks, elapsed, &next_snapshot, &spent)) != QKV_OK)
            break;
        start += spent;
        int flags = 0;
        if ((o->max_steps && t->step >= o->max_steps) || (o->time_budget_s > 0 && elapsed >= o->time_budget_s) ||
            (hooks && hooks->stop && *hooks->stop) || (o->patience && t->bad_validations >= o->patience))
            flags |= FLAG_STOP;
        /* Without validation, checkpoint.qkv is still refreshed every TRAIN_SAVE_INTERVAL_S. */
        if ((!o->valid_every || !t->dev_b) && t->step > first_step && now_s() - last_save > TRAIN_SAVE_INTERVAL_S)
            flags |= FLAG_SAVE;
        if (o->world > 1 && (s = hooks->broadcast_flags(hooks->dist_ctx, &flags)) != QKV_OK)
            break;
        if (flags & FLAG_SAVE) {
            if ((s = trainer_save_checkpoint(t, hooks, elapsed)) != QKV_OK)
                break;
            last_save = now_s();
        }
        if (flags & FLAG_STOP)
            break;
        qkv_train_report r;
        if ((s = train_step(t, hooks, &r)) != QKV_OK)
            break;
        int64_t step = t->step;
        elapsed = t->elapsed_prev + (now_s() - start);
        r.elapsed_s = elapsed;
        r.tgt_tokens_per_s = elapsed > 0 ? (double)t->tgt_tokens / elapsed : 0;
        double per_step = (now_s() - start) / (double)(step - first_step);
        r.remaining_s = -1;
        if (o->max_steps)
            r.remaining_s = per_step * (double)(o->max_steps - step);
        if (o->time_budget_s > 0 && (r.remaining_s < 0 || o->time_budget_s - elapsed < r.remaining_s))
            r.remaining_s = o->time_budget_s - elapsed;
        if (t->root) {
            log_report(t, &r);
            if (hooks && hooks->on_report)
                hooks->on_report(hooks->ctx, &r);
        }
        if (o->valid_every && t->dev_b && step % o->valid_every == 0) {
            qkv_train_report v = r;
            if (t->root && (s = validate(t, hooks, score_ctx, elapsed, &v)) != QKV_OK)
                break;
            /* a crash after this loses at most one validation interval */
            if ((s = trainer_save_checkpoint(t, hooks, elapsed)) != QKV_OK)
                break;
            last_save = now_s();
            if (t->root) {
                log_report(t, &v);
                if (hooks && hooks->on_report)
                    hooks->on_report(hooks->ctx, &v);
            }
        }
    }
    double elapsed = t->elapsed_prev + (now_s() - start);
    if (s != QKV_OK)
        return s;
    /* The last steps since the previous validation may hold the best model. */
    if (t->root && o->valid_every && t->dev_b && t->step > first_step && t->step % o->valid_every != 0) {
        qkv_train_report v;
        memset(&v, 0, sizeof v);
        v.step = t->step;
        v.epoch = t->last_epoch;
        QKV_TRY(validate(t, hooks, score_ctx, elapsed, &v));
        log_report(t, &v);
        if (hooks && hooks->on_report)
            hooks->on_report(hooks->ctx, &v);
    }
    QKV_TRY(trainer_save_checkpoint(t, hooks, elapsed));
    /* model.qkv: the best on dev when validating, else the last. */
    if (t->root && t->best_step < 0) {
        char *p = qkv_path_join(t->dir, "model.qkv");
        if (!p)
            return qkv_fail(QKV_ERR_NOMEM, "out of memory");
        s = qkv_checkpoint_save_model(p, t->model, &t->vocab);
        free(p);
    }
    return s;
}
