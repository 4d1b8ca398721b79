/* Learning-rate schedules: lr(step) is a pure function of the step and a
 * validated options struct, so a resumed run needs to save nothing but the
 * step.
 *
 * Steps count optimizer updates from 1: lr(step) is the rate used by update
 * number `step`. lr(0) is the value "before training" (warmup_init_lr, or
 * peak_lr when there is no warmup) and steps below 0 give the same.
 *
 * Warmup, shared by every kind (W = warmup_steps, init = warmup_init_lr):
 *     lr(s) = init + (peak - init) * s / W              for 0 <= s <= W
 * so the peak is reached exactly at s = W. With init = 0 the first update
 * uses peak / W.
 *
 * After warmup (s > W):
 *   inverse-sqrt  lr(s) = peak * sqrt(W / s)                     (W >= 1)
 *   constant      lr(s) = peak
 *   cosine        lr(s) = min + (peak - min) * (1 + cos(pi * (s - W) / (N - W))) / 2
 *                 for W < s <= N (N = total_steps), then lr(s) = min
 *
 * The paper's schedule ("Attention Is All You Need", eq. 3)
 *     lrate = d_model^-0.5 * min(step^-0.5, step * W^-1.5)
 * is exactly inverse-sqrt with init = 0 and peak = qkv_schedule_paper_peak(d_model, W);
 * both sides agree at every step >= 1.
 * fairseq's inverse_sqrt computes the same function of the update count, but
 * sets the rate after counting an update, so its update number k runs with
 * this module's lr(k - 1): the same curve, shifted by one step. */
#ifndef QKV_TRAIN_SCHEDULE_H
#define QKV_TRAIN_SCHEDULE_H

#include <stdint.h>

#include "qkv.h"

typedef enum {
    QKV_LR_INVERSE_SQRT = 0, /* the default: the paper's */
    QKV_LR_CONSTANT,
    QKV_LR_COSINE,
} qkv_lr_kind;

typedef struct {
    qkv_lr_kind kind;
    double peak_lr;        /* > 0: the rate reached at the end of warmup */
    int64_t warmup_steps;  /* >= 0; >= 1 for inverse-sqrt */
    double warmup_init_lr; /* in [0, peak_lr]: the rate warmup starts from */
    double min_lr;         /* cosine: in [0, peak_lr], the final rate */
    int64_t total_steps;   /* cosine: > warmup_steps, the step that reaches min_lr */
} qkv_schedule_options;

/* Inverse-sqrt, peak 1e-3, 4000 warmup steps from 0 (cosine fields unset). */
qkv_schedule_options qkv_schedule_default_options(void);

/* Checks every field; on failure names the field, its value and what was
 * expected (QKV_ERR_CONFIG). */
qkv_status qkv_schedule_validate(const qkv_schedule_options *o);

/* The learning rate for update number `step` (see the top of this file).
 * o must have passed qkv_schedule_validate(). */
double qkv_schedule_lr(const qkv_schedule_options *o, int64_t step);

/* d_model^-0.5 * warmup^-0.5: the peak of the paper's schedule. */
double qkv_schedule_paper_peak(int d_model, int64_t warmup_steps);

/* Parses a kind name: "inverse-sqrt" (also "inverse_sqrt", "invsqrt",
 * "rsqrt", "noam"), "constant", "cosine". On failure the message lists the
 * accepted names (QKV_ERR_CONFIG). */
qkv_status qkv_schedule_parse_kind(const char *name, qkv_lr_kind *kind);

/* The canonical name of a kind ("inverse-sqrt", "constant", "cosine"). */
const char *qkv_schedule_kind_name(qkv_lr_kind kind);

#endif
