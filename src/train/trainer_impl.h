/* The trainer's state, shared by the loop (trainer.c) and the checkpoint
 * of the training state (trainer_checkpoint.c). Internal to train/. */
#ifndef QKV_TRAIN_TRAINER_IMPL_H
#define QKV_TRAIN_TRAINER_IMPL_H

#include <stdio.h>

#include "base/context.h"
#include "model/model.h"
#include "train/trainer.h"

struct qkv_trainer {
    qkv_train_options opt;
    qkv_model *model;
    model_state *state;
    float *m, *v; /* Adam moments, mirroring the parameter buffer */
    float *acc;   /* [n_params] the sum of this rank's micro-batch gradients (accum > 1) */
    qkv_batch *micro; /* [world * accum] one update's micro-batches */
    float *losses;    /* [world * accum] their mean losses */
    int root;         /* rank 0: writes files and validates */
    size_t n_params;
    qkv_batcher *train_b, *dev_b;
    const qkv_parallel *dev;
    qkv_vocab_blobs vocab;
    char *dir;
    FILE *log;
    int64_t step;        /* updates done */
    int64_t tgt_tokens;  /* target tokens trained on */
    double elapsed_prev; /* training seconds of earlier runs (resume) */
    double best_score;   /* higher is better: 100 x dev chrF - dev loss (see validate) */
    int64_t best_step;
    int bad_validations;
    int64_t last_epoch;
    /* the options' context with the precision set (same pool; what the
     * entry points bind), the precision (AUTO until resolved) and why */
    qkv_context view;
    qkv_precision used;
    char why[256];
    int batch_tokens;
};

/* Writes DIR/checkpoint.qkv (rank 0; every rank gathers its data position).
 * keep in sync with qkv_trainer_resume (trainer_checkpoint.c). */
qkv_status trainer_save_checkpoint(qkv_trainer *t, const qkv_train_hooks *h, double elapsed);

#endif
