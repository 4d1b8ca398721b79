/* Batcher: padded, length-bucketed batches of a parallel corpus, measured in
 * tokens, shuffled with our seeded RNG, resumable to the exact batch.
 *
 * Size of a batch. Its cost is
 *     rows * max(S, T)
 * where S and T are the longest padded source and target in it (the "longest
 * padded side"; the lengths of data/parallel.h: |x| + 1, or |x| without a
 * source </s>, and |y| + 1). Batches
 * are filled greedily in the planned order and closed before a pair would
 * push the cost above batch_tokens (or the rows above max_sentences). A pair
 * whose own cost (its longer padded side) exceeds batch_tokens becomes a batch of
 * one row, the only case where a batch costs more than batch_tokens: dropping
 * it would silently lose data that passed the max_len filter.
 *
 * Plan of one epoch (shuffle = 1, training):
 *   1. shuffle all pairs (Fisher-Yates, our RNG);
 *   2. cut the shuffled list into windows of sort_window pairs (0: one window
 *      holding the whole corpus, as fairseq does; Marian's "maxi-batch" is a
 *      window of about 100 batches) and sort each window by length, key
 *      (max(S, T), S, T) with the shuffled position breaking ties, so pairs of
 *      equal lengths are grouped differently in each epoch;
 *   3. cut each window into batches (a batch never spans two windows);
 *   4. shuffle the order of all the epoch's batches.
 * With shuffle = 0 (dev/eval) the RNG is never drawn: with sort_by_length the
 * whole corpus is sorted by the same key (ties in corpus order) to waste
 * little padding, otherwise it is taken in corpus order; every epoch is the
 * same. Each row carries the index of its pair in the corpus (and through it
 * the line number), so results can be put back in the original order.
 *
 * Position and resume. The batcher's position is (epoch, index of the next
 * batch in it, RNG state at the start of that epoch) plus fingerprints of the
 * corpus and the options. Restoring it re-plans that epoch from the saved RNG
 * state and skips to the batch, so a resumed run gets bit-identical batches
 * from there on, across later epochs too. */
#ifndef QKV_DATA_BATCH_H
#define QKV_DATA_BATCH_H

#include <stdint.h>

#include "data/parallel.h"
#include "qkv.h"

typedef struct {
    int batch_tokens;   /* > 0: most rows * longest padded side per batch */
    int max_sentences;  /* > 0: most rows per batch; 0: no limit */
    int pad_id;         /* >= 0: fills src, tgt_in and labels past each row's length */
    int shuffle;        /* 1: training (see above); 0: dev/eval, deterministic */
    int sort_by_length; /* 1: bucket by length (training: within windows); 0: no sorting */
    int sort_window;    /* pairs per sorting window when shuffling; 0: the whole corpus */
    uint64_t seed;      /* shuffle = 1 only */
    int keep;           /* >= 1: how many of the latest batches stay valid (see qkv_batch); set
                         * it to the gradient-accumulation count to hold one update's micro-batches */
    /* Data parallelism: the stream of batches is dealt in groups of
     * world * share consecutive batches (one update of the whole job), and
     * this process, number `rank` of `world`, builds batches rank * share to
     * rank * share + share - 1 of each group; the others come back with
     * owned = 0, their sizes and token counts but no arrays. Every rank thus
     * walks the same plan (and holds the same position), so the token count
     * of the whole update is known everywhere. Not part of the options
     * fingerprint: a checkpoint's data position is the same on every rank.
     * Defaults 0, 1, 1: one process builds every batch. The deal restarts at
     * a group boundary on new and seek. */
    int rank, world, share;
} qkv_batcher_options;

/* One batch. Arrays are row-major and owned by the batcher, which cycles
 * through `keep` sets of them: a batch stays valid until `keep` more batches
 * have been handed out (with keep = 1, until the next one), or the batcher
 * seeks or is freed. Row r of the source is x + [</s>] then pad_id; of the
 * decoder input [start] + y then pad_id; of the labels y + [</s>] then
 * pad_id, so labels[r][j] is the token to predict after tgt_in[r][0..j].
 * Positions j >= tgt_len[r] are padding; masking by tgt_len (rather than by
 * comparing with pad_id) stays right when pad_id is also the decoder start,
 * as in Marian. */
typedef struct {
    int B, S, T;
    const int *src;     /* [B, S] */
    const int *src_len; /* [B] padded source lengths (with </s> when the corpus adds one) */
    const int *tgt_in;  /* [B, T] */
    const int *labels;  /* [B, T] */
    const int *tgt_len; /* [B] |y| + 1: the non-pad entries of each tgt_in and labels row */
    const int *index;   /* [B] pair index in the corpus (its line: corpus->pairs[index].line) */
    int64_t src_tokens; /* sum of src_len */
    int64_t tgt_tokens; /* sum of tgt_len: the non-pad labels, for averaging the loss */
    int64_t epoch;      /* 0-based */
    int64_t batch;      /* index in the epoch */
    int64_t epoch_batches;
    int owned;          /* 1: built for this rank; 0: another rank's (arrays NULL) */
} qkv_batch;

/* Upper bounds on any batch's shape, for sizing a workspace once. */
typedef struct {
    int max_rows;
    int max_src_len, max_tgt_len; /* S and T */
    int64_t max_src_cells;        /* B * S */
    int64_t max_tgt_cells;        /* B * T */
} qkv_batch_limits;

/* Where a run is in its data (see the top of this file). */
typedef struct {
    int64_t epoch;
    int64_t batch; /* next batch to hand out in epoch */
    uint64_t rng[4];
    uint64_t corpus_hash;  /* the ids, lengths and specials of the corpus */
    uint64_t options_hash; /* the options that shape the plan, the seed included */
} qkv_data_position;

/* Serialized size of a qkv_data_position. */
#define QKV_DATA_POSITION_BYTES 80

typedef struct qkv_batcher qkv_batcher;

/* batch_tokens 4096, no sentence limit, pad_id 0, shuffled, sorted by
 * length over the whole corpus, seed 1, keep 1. */
qkv_batcher_options qkv_batcher_default_options(void);

/* Checks the options (QKV_ERR_CONFIG naming the field). */
qkv_status qkv_batcher_validate(const qkv_batcher_options *o);

/* Plans epoch 0. The corpus must outlive the batcher and not change.
 * Errors: QKV_ERR_CONFIG, QKV_ERR_ARG (an empty corpus), QKV_ERR_NOMEM. */
qkv_status qkv_batcher_new(qkv_batcher **out, const qkv_parallel *corpus, const qkv_batcher_options *o);
void qkv_batcher_free(qkv_batcher *b);

/* Fills *batch with the next batch of the current epoch and returns 1; at the
 * end of an epoch returns 0 once without a batch, having planned the next
 * epoch. So `while (qkv_batcher_next(b, &batch)) ...` walks one epoch, and a
 * training loop calls again after a 0. */
int qkv_batcher_next(qkv_batcher *b, qkv_batch *batch);

/* Number of batches in the current epoch (it can differ between epochs). */
int64_t qkv_batcher_epoch_batches(const qkv_batcher *b);

qkv_batch_limits qkv_batcher_limits(const qkv_batcher *b);

/* The position of the next batch. */
void qkv_batcher_tell(const qkv_batcher *b, qkv_data_position *pos);

/* Moves to pos, which tell() gave for the same corpus and options; the next
 * batches are then exactly those that followed it. Errors (QKV_ERR_ARG,
 * nothing changed): another corpus or other options (different hashes), or a
 * batch index beyond its epoch. */
qkv_status qkv_batcher_seek(qkv_batcher *b, const qkv_data_position *pos);

/* Little-endian fixed layout, for checkpoints:
 *   0  "QKVDPOS1"    8 bytes magic and version
 *   8  epoch         int64
 *  16  batch         int64
 *  24  rng[0..3]     4 x uint64
 *  56  corpus_hash   uint64
 *  64  options_hash  uint64
 *  72  check         uint64, a hash of bytes 0..71
 * keep in sync with qkv_data_position_decode. */
void qkv_data_position_encode(unsigned char out[QKV_DATA_POSITION_BYTES], const qkv_data_position *pos);
/* QKV_ERR_FORMAT when the magic, the check or the values are wrong. */
qkv_status qkv_data_position_decode(qkv_data_position *pos, const unsigned char in[QKV_DATA_POSITION_BYTES]);

#endif
