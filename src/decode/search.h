/* Search over model ids: greedy, beam search and sampling on a qkv_model
 * with the incremental decoder cache (model/incremental.c). No text here:
 * translator.c puts tokenization around it.
 *
 * Everything follows transformers' generate() (4.39) step for step, so that
 * outputs agree token for token:
 *   - a target sequence starts with the decoder prompt (decoder start id,
 *     then the forced prefix); "length" in max_length / min_length counts
 *     it, the length penalty does not (generate()'s decoder_prompt_len);
 *   - greedy and sampling apply the processors to raw logits and score a
 *     token by log_softmax of the processed logits (compute_transition_
 *     scores(normalize_logits=True)); beam search applies them to
 *     log_softmax(logits) and adds the running beam score;
 *   - processor order: repetition penalty, no-repeat n-gram, bad words,
 *     min length, forced EOS; then (sampling) temperature, top-k, top-p. */
#ifndef QKV_DECODE_SEARCH_H
#define QKV_DECODE_SEARCH_H

#include <stdint.h>

#include "base/rng.h"
#include "model/model.h"
#include "qkv.h"

/* Source tokens encoded at once: the encoder's workspace (one layer's
 * activations, model_state_new_forward: about 28 KB a token for the small
 * model) grows with rows x length and stays resident while the batch
 * decodes, so long batches are encoded in chunks of about this many
 * tokens (512: 14 MB). Products of a few hundred rows already run at
 * full speed: build/bench/quant_linear on an AVX2 EPYC, N 1024, K 256,
 * 128 rows 114 GFLOP/s int8 and 87 float32, 3,000 rows 109 and 75. */
#define SEARCH_ENCODER_TOKENS 512

/* Largest beam (the candidate lists live on the stack). */
#define SEARCH_MAX_BEAM 32

/* The options of qkv_translate_options resolved to ids. */
typedef struct {
    int beam_size, n_best;
    int sample, num_samples, top_k;
    float temperature, top_p;
    uint64_t seed;
    qkv_length_penalty_kind lp_kind;
    float alpha;
    qkv_early_stopping early_stopping;
    int max_length;         /* cap counting the prompt; also bounded by max_positions + 1 */
    float max_length_ratio; /* 0: off */
    int max_length_offset;
    int min_length, no_repeat_ngram_size;
    float repetition_penalty; /* 1: off */
    int forced_eos;
    const int *bad;         /* bad word sequences separated by -1 (a trailing -1 is optional) */
    int n_bad;
    const int *prompt;      /* decoder start id, then the prefix */
    int prompt_len;         /* >= 1 */
    int eos_id;
    int batch_size;
    int encoder_tokens; /* 0: SEARCH_ENCODER_TOKENS */
    int weight_type;    /* qlinear_type of the linear layers (kernels/qlinear.h) */
} search_params;

typedef struct {
    int *ids;      /* generated ids after the prompt, EOS excluded */
    int n;
    int ended;     /* ended with EOS */
    float logprob; /* sum of the (processed) log-probabilities, EOS included */
    float score;   /* logprob / length penalty (what the search ranked by) */
} search_hyp;

typedef struct {
    search_hyp *hyps; /* best first */
    int n_hyps;
} search_result;

/* Decodes n sources (src[i]: src_len[i] ids, EOS included; a source of
 * length 0 gets no hypothesis). out[n] is filled in input order; free it
 * with search_results_free. Allocates and packs everything for this call
 * alone (for a model whose weights change between calls, as in training's
 * validation); a translator keeps search_states instead. */
qkv_status search_run(const qkv_model *m, const search_params *p, const int *const *src, const int *src_len, int n,
                      search_result *out);
void search_results_free(search_result *r, int n);

/* What search_run allocates, kept for the next call: the encoder
 * workspace, the decoder cache and the search's row buffers. A call that
 * needs more makes the part that is too small anew, at the larger size;
 * one that needs the same or less reuses everything. The decoder weights
 * come from w (shared, not copied, must outlive the state) or, with w
 * NULL, are packed by the state on its first call and kept. One state
 * serves one call at a time; the model may be shared. Outputs do not
 * depend on what the state served before. */
typedef struct search_state search_state;
qkv_status search_state_new(const qkv_model *m, const model_decoder_weights *w, search_state **out);
void search_state_free(search_state *s);
/* search_run on a state (its model). */
qkv_status search_run_state(search_state *s, const search_params *p, const int *const *src, const int *src_len,
                            int n, search_result *out);

/* The order search_run_state decodes the sources in (longest first, ties
 * in input order; empty ones left out), into order[n]: batch k is order[k *
 * batch_size ...]. Returns the count, -1 when out of memory. */
int search_batch_order(const int *src_len, int n, int *order);

/* The max_length that applies to a source of src_len ids (ratio, offset,
 * max_positions). */
int search_max_length(const qkv_model *m, const search_params *p, int src_len);

/* ---- per-row pieces (logits.c) ------------------------------------------- */

/* The length penalty divisor of a hypothesis with len generated tokens. */
double search_length_penalty(qkv_length_penalty_kind k, float alpha, int len);

/* Applies the processors in generate()'s order to one row of V scores
 * (logits or log-probabilities) given the sequence so far seq[0..len)
 * (prompt included) and the sentence's max_length. mark: V bytes of zeros
 * (scratch, left zeroed). */
void search_process_row(float *x, int V, const int *seq, int len, const search_params *p, int max_length,
                        unsigned char *mark);

/* The k largest of x[0..V) in decreasing order (ties: smaller index first)
 * into vals[k], idx[k]; returns how many (min(k, V)). A bounded insertion
 * list: O(V) compares plus O(k) per accepted element, no sort of V. */
int search_topk(const float *x, int V, int k, float *vals, int *idx);
/* The same over x[v] + off (a float addition per value), x unchanged. */
int search_topk_offset(const float *x, int V, float off, int k, float *vals, int *idx);
/* The same by a full sort (the obviously-correct reference for tests). */
int search_topk_ref(const float *x, int V, int k, float *vals, int *idx);

/* log(sum(exp(x))) over finite entries; -INFINITY when none is finite. */
float search_logsumexp(const float *x, int V);

/* First index of the maximum. */
int search_argmax(const float *x, int V);

/* Sampling: temperature, top-k and top-p warpers (transformers'
 * definitions, min_tokens_to_keep 1) applied to x in place, then a draw
 * from softmax(x). order: V ints of scratch. */
int search_sample_row(float *x, int V, const search_params *p, qkv_rng *rng, int *order);

#endif
