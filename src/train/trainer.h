/* The training loop: token-bucketed batches, AdamW, a learning-rate
 * schedule, gradient accumulation and clipping, validation with best-model
 * tracking and early stopping, checkpoints that resume bit-identically.
 *
 * Files in the output directory (all written atomically):
 *   model.qkv        the model to translate with: best on dev when
 *                    validating, else the last (config, vocabularies, params)
 *   checkpoint.qkv   the last state, with optimizer moments, step and data
 *                    position: what --resume continues from
 *   step-<N>.qkv     the last keep_checkpoints models, for `qkv average`
 *   minute-<M>.qkv   snapshots at training-time marks (snapshot_minutes)
 *   log.jsonl        one JSON object per step (and one per validation)
 *
 * Determinism: dropout masks are a function of (seed, step, micro-batch),
 * the batches of (seed, epoch); the optimizer state and both are saved, so a
 * run stopped at step k and resumed ends at step n with the same parameters
 * as an uninterrupted run (same thread count). */
#ifndef QKV_TRAIN_TRAINER_H
#define QKV_TRAIN_TRAINER_H

#include <signal.h>
#include <stdint.h>

#include "data/batch.h"
#include "data/parallel.h"
#include "qkv.h"
#include "train/checkpoint.h"
#include "train/model_io.h"
#include "train/schedule.h"

#define QKV_TRAIN_MAX_SNAPSHOTS 16

typedef struct {
    qkv_schedule_options schedule;
    float beta1, beta2, eps; /* Adam: 0.9, 0.98, 1e-9 */
    float weight_decay;      /* 0: Adam; > 0: AdamW (decoupled) */
    float clip_norm;         /* global-norm clipping; 0: off */
    float label_smoothing;   /* 0.1 */
    int accum;               /* micro-batches per update (>= 1) */
    int64_t max_steps;       /* 0: no limit */
    double time_budget_s;    /* 0: no limit; counts training time of this and earlier runs */
    int64_t valid_every;     /* steps between validations; 0: none */
    int patience;            /* validations without improvement before stopping; 0: never stop */
    int keep_checkpoints;    /* step-<N>.qkv files kept; 0: none */
    uint64_t seed;
    /* Model snapshots at marks of training time (minutes, increasing, >= 0):
     * minute-<M>.qkv (M printed with %g) holds the model at the first step
     * boundary where the training time reaches the mark, i.e. the model a
     * run with time_budget_s = 60 * M ends with (that run stops at the same
     * boundary; mark 0: the initial model). The time spent writing them is
     * not training time. A resumed run skips marks its earlier runs passed. */
    double snapshot_minutes[QKV_TRAIN_MAX_SNAPSHOTS];
    int n_snapshots;
    /* Data parallelism: this process is rank `rank` of `world` (defaults 0
     * and 1: alone). An update then covers world * accum micro-batches of
     * the one stream of batches, rank r computing numbers r * accum to
     * r * accum + accum - 1; the hooks' reduction sums the ranks' gradients
     * in rank order, so world W with accum 1 gives the parameters of one
     * process with accum W, bit for bit. Rank 0 alone writes files, logs,
     * reports and validates. */
    int rank, world;
    qkv_context *context; /* NULL: kernels run on the calling thread alone; else what the
                             trainer's computation runs on (borrowed, outlives the trainer) */
    /* QKV_PRECISION_FP32 (default: auto's choice hangs on a timing, and two
     * runs compared bit for bit must not differ by it), _AUTO or _BF16
     * (qkv.h). bf16 on a CPU
     * without native bf16 products is refused by qkv_trainer_new
     * (QKV_ERR_CONFIG). auto: fp32 there; else the model's feed-forward
     * products (forward, input and weight gradients, at the batch's token
     * count) are timed on the context in both precisions before the first
     * step, and bf16 is taken when it is faster by 10% or more; a resumed
     * auto run keeps the checkpoint's precision (resume is bit-exact within
     * a precision). With world > 1, rank 0's choice holds for all. */
    qkv_precision precision;
} qkv_train_options;

qkv_train_options qkv_train_default_options(void);
qkv_status qkv_train_validate_options(const qkv_train_options *o);

/* What the loop reports after every step and every validation. */
typedef struct {
    int64_t step, epoch;
    double loss;            /* mean label-smoothed cross-entropy of this step's tokens */
    double lr, grad_norm;   /* grad_norm before clipping */
    double tgt_tokens_per_s; /* target tokens per second of training time so far */
    double elapsed_s;       /* training time so far (this and resumed runs) */
    double remaining_s;     /* estimate from the step or time limit; < 0 when unknown */
    int64_t tgt_tokens;     /* target tokens seen so far */
    int is_validation;
    int is_snapshot;        /* a snapshot was written at this boundary (after `step` updates) */
    double snapshot_minutes; /* its mark */
    double dev_loss, dev_ppl, dev_bleu, dev_chrf; /* validation only; bleu/chrf < 0 when not computed */
    int is_best;
} qkv_train_report;

/* Optional hooks, called from the training thread. */
typedef struct {
    void *ctx;
    void (*on_report)(void *ctx, const qkv_train_report *r);
    /* Translates the dev set with the current model and scores it; NULL: dev
     * loss only. */
    qkv_status (*score_dev)(void *ctx, const qkv_model *m, double *bleu, double *chrf);
    /* Set (e.g. by a signal handler) to finish the current step, save and return. */
    volatile sig_atomic_t *stop;
    /* Context of score_dev; NULL: ctx. */
    void *score_ctx;
    /* Data parallelism (src/dist/ provides them; needed when world > 1,
     * called on every rank at the same points, with dist_ctx). */
    void *dist_ctx;
    /* The gradient-reduction hook: runs after the backward passes, before
     * the global norm, clipping and the optimizer step. Sums grads[0..n)
     * over the ranks in rank order ((g0 + g1) + g2 ...), in place, leaving
     * the same sum on every rank. */
    qkv_status (*reduce_grads)(void *ctx, float *grads, size_t n);
    /* all[r * nbytes ..] = rank r's mine, on every rank. */
    qkv_status (*allgather)(void *ctx, const void *mine, size_t nbytes, void *all);
    /* Replaces *flags with rank 0's on every rank. */
    qkv_status (*broadcast_flags)(void *ctx, int *flags);
    /* Overlap (optional, used when accum is 1): reduce_begin(grads, n)
     * before the backward pass, reduce_ready(begin, end) as the backward
     * finishes each layer (model_set_grads_ready), so that the reduction of
     * those gradients runs while the backward of earlier layers goes on;
     * reduce_grads then reduces the rest and waits. The sum is the same,
     * bit for bit. */
    qkv_status (*reduce_begin)(void *ctx, float *grads, size_t n);
    void (*reduce_ready)(void *ctx, size_t begin, size_t end);
} qkv_train_hooks;

typedef struct qkv_trainer qkv_trainer;

/* Sets up training of model (which the trainer updates in place and does not
 * own) on train (and dev, may be NULL), writing into out_dir (created if
 * missing). The corpora must outlive the trainer. */
qkv_status qkv_trainer_new(qkv_trainer **out, qkv_model *model, const qkv_parallel *train,
                           const qkv_parallel *dev, const qkv_batcher_options *batching,
                           const qkv_train_options *opt, const qkv_vocab_blobs *vocab, const char *out_dir);
void qkv_trainer_free(qkv_trainer *t);

/* Restores optimizer moments, step, data position and validation history
 * from out_dir/checkpoint.qkv (the model's parameters are loaded by the
 * caller from the same file, see qkv_checkpoint_load_model). */
qkv_status qkv_trainer_resume(qkv_trainer *t, const char *checkpoint_path);

/* Trains until max_steps, the time budget, early stopping or *hooks.stop;
 * then writes checkpoint.qkv and model.qkv. Returns QKV_OK on any of these
 * ends (QKV_ERR_INTERRUPTED is not used: a stop is a clean end). */
qkv_status qkv_trainer_run(qkv_trainer *t, const qkv_train_hooks *hooks);

int64_t qkv_trainer_step(const qkv_trainer *t);

/* The precision the trainer runs in (fp32 or bf16), resolving auto now
 * (the measurement) if no step has run yet; why (if not NULL) receives a
 * line saying how it was chosen. Binds the options' context while it
 * measures. QKV_OK, or an error from a collective when world > 1. */
qkv_status qkv_trainer_precision(qkv_trainer *t, const qkv_train_hooks *hooks, qkv_precision *used,
                                 const char **why);

/* The training batcher's position (the same on every rank). */
void qkv_trainer_data_position(const qkv_trainer *t, qkv_data_position *pos);

/* One update: takes the next world * accum micro-batches, runs forward and
 * backward on this rank's, reduces the gradients (hooks->reduce_grads when
 * world > 1), checks the global norm, clips and takes the optimizer step.
 * Fills *r (a step report: loss, lr, grad_norm, tokens; no timing). Files,
 * the log and validation are qkv_trainer_run's. */
qkv_status qkv_trainer_train_step(qkv_trainer *t, const qkv_train_hooks *hooks, qkv_train_report *r);

#endif
