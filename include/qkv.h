/* qkv — a Transformer encoder-decoder for machine translation, in C11.
 *
 * This header is the whole public API. Conventions (as in whisper.cpp and
 * SQLite):
 *   - objects are opaque handles created by qkv_*_load / qkv_*_new and
 *     released by the matching qkv_*_free (NULL is accepted by every free);
 *   - functions that can fail return a qkv_status; on failure a message
 *     naming the file, line or field and what was expected is kept per thread
 *     and returned by qkv_last_error();
 *   - options are structs obtained from qkv_*_default_options() and edited by
 *     the caller;
 *   - nothing in the library prints to stdout or calls exit().
 *
 * Each module adds its declarations in its own section below. */
#ifndef QKV_H
#define QKV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QKV_VERSION_STRING "0.1.0"

/* ---- status and errors (src/base/status.c) ---------------------------- */

typedef enum {
    QKV_OK = 0,
    QKV_ERR_IO,          /* a file could not be opened, read or written */
    QKV_ERR_FORMAT,      /* a file's content is malformed or truncated */
    QKV_ERR_CONFIG,      /* an option or configuration field is invalid */
    QKV_ERR_ARG,         /* a function was called with invalid arguments */
    QKV_ERR_NOMEM,       /* an allocation failed */
    QKV_ERR_UNSUPPORTED, /* valid input that qkv does not handle */
    QKV_ERR_INTERRUPTED  /* stopped by a signal or a time budget */
} qkv_status;

/* The message of the most recent failure on this thread ("" if none).
 * The pointer stays valid until the next failing call on this thread. */
const char *qkv_last_error(void);

/* A short fixed name for a status code ("ok", "io", "format", ...). */
const char *qkv_status_name(qkv_status s);

/* ---- kernels: the instruction-set path (src/kernels/dispatch.c) ---------- */

/* qkv's kernels exist once per instruction set (generic x86-64, AVX2+FMA,
 * AVX-512) in one binary; the best path the CPU and the OS support is chosen
 * before main() runs, capped by the environment variable QKV_ISA
 * (generic|avx2|avx512), as CT2_FORCE_CPU_ISA and ONEDNN_MAX_CPU_ISA cap
 * theirs. The BLAS (OpenBLAS) makes its own choice (OPENBLAS_CORETYPE).
 *
 * QKV_ERR_CONFIG when $QKV_ISA names an unknown path or one this CPU cannot
 * run (the best path is then used); programs should call it once at start. */
qkv_status qkv_kernels_check(void);
/* The path in use: "generic", "avx2" or "avx512". Thread-safe. */
const char *qkv_kernels_isa(void);
/* A few lines on the CPU (brand, features found), the kernel paths it can
 * run and the one in use, and the BLAS, written into buf (snprintf
 * semantics: returns the length it needed). */
int qkv_system_info(char *buf, size_t size);

/* ---- precision of training's large products (src/train/precision.c) ------ */

/* fp32: every product in fp32. bf16: the operands of the large products
 * (the linear layers' GEMMs, forward and backward, the output projection
 * included) are rounded to bfloat16 and summed in fp32; master weights,
 * gradients, Adam moments, softmax, layer norm and the loss stay fp32.
 * auto: bf16 where the CPU has native bf16 products and they measure
 * faster on the model's shapes, else fp32 (qkv_train_options.precision). */
typedef enum { QKV_PRECISION_AUTO = 0, QKV_PRECISION_FP32 = 1, QKV_PRECISION_BF16 = 2 } qkv_precision;

/* "auto", "fp32", "bf16" ("?" for another value). */
const char *qkv_precision_name(qkv_precision p);

/* 1 when the kernel path in use has native bf16 products (AVX512-BF16
 * vdpbf16ps, or AMX-BF16), else 0 with *why (if not NULL) naming what is
 * missing. $QKV_ISA below avx512 turns them off (QKV_ISA=avx2: none). */
int qkv_bf16_native(const char **why);

/* ---- execution context (src/base/context.c) ------------------------------ */

/* What a computation runs on: for now its thread count and a thread pool of
 * that many threads (later also precision and device). The caller owns it
 * and hands it to the objects that compute; nothing about threads is
 * process-wide.
 *
 * Thread safety: a context may be used from several threads at once. Its
 * pool runs one parallel region at a time; a thread that finds it busy runs
 * its region serially on itself (correct, just not parallel), so give each
 * thread that needs parallel speed its own context. qkv_context_free must not
 * race with any use of the context. */
typedef struct qkv_context qkv_context;

typedef struct {
    int threads; /* 0: $QKV_THREADS if set, else the number of cores this process may run on */
} qkv_context_options;

qkv_context_options qkv_context_default_options(void);

/* Creates a context (o may be NULL: defaults) and starts its threads - 1
 * worker threads. QKV_ERR_CONFIG naming the field (threads < 0 or above
 * 1024) or the variable ($QKV_THREADS not a positive integer, $QKV_SPIN_US
 * not an integer >= -1); QKV_ERR_NOMEM when memory or a thread could not be
 * had; QKV_ERR_ARG for a NULL out. */
qkv_status qkv_context_new(const qkv_context_options *o, qkv_context **out);
void qkv_context_free(qkv_context *c);
/* The resolved thread count (>= 1). */
int qkv_context_threads(const qkv_context *c);

/* ---- model: configuration and parameters (src/model/) -------------------- */

typedef enum { QKV_ACT_RELU = 0, QKV_ACT_GELU = 1, QKV_ACT_SWISH = 2 } qkv_activation;
typedef enum { QKV_NORM_PRE = 0, QKV_NORM_POST = 1 } qkv_norm_placement;
typedef enum { QKV_POS_SINUSOIDAL = 0, QKV_POS_LEARNED = 1 } qkv_position_kind;

/* The shape of a Transformer encoder-decoder. Keys of the JSON form are the
 * field names (keep in sync with src/model/config.c). Booleans are ints. */
typedef struct {
    int src_vocab_size, tgt_vocab_size; /* > 0, no default */
    int shared_vocab;                   /* one vocabulary for both sides */
    int d_model;                        /* 512 */
    int encoder_heads, decoder_heads;   /* 8 each ("heads" sets both) */
    int encoder_d_ff, decoder_d_ff;     /* 2048 each ("d_ff" sets both) */
    int encoder_layers, decoder_layers; /* 6 each */
    float dropout;                      /* 0.1: residual and embedding dropout */
    float attention_dropout;            /* 0: on attention probabilities */
    float activation_dropout;           /* 0: after the FFN activation */
    qkv_activation activation;          /* relu */
    qkv_norm_placement norm;            /* post (the paper's) */
    int final_norm;                     /* layer norm after each stack: default 1 for pre, 0 for post */
    qkv_position_kind positions;        /* sinusoidal */
    int max_positions;                  /* 512: longest source or target sequence */
    int scale_embedding;                /* 1: token embeddings times sqrt(d_model) */
    int tie_encoder_decoder_embeddings; /* 0: needs shared_vocab */
    int tie_output_embeddings;          /* 1: output projection = decoder embedding */
    int output_bias;                    /* 0: a bias on the logits (Marian's final_logits_bias) */
    float layer_norm_eps;               /* 1e-5 */
    int pad_id;                         /* 0: padding, ignored by the loss */
    int bos_id;                         /* 1 */
    int eos_id;                         /* 2 */
    int decoder_start_id;               /* first decoder input; default bos_id */
} qkv_model_config;

/* The defaults above, with both vocabulary sizes 0 (the caller must set them). */
qkv_model_config qkv_model_default_config(void);

/* Parses and validates a JSON object; every key is optional except the
 * vocabulary sizes, and unknown keys are errors. On failure returns
 * QKV_ERR_CONFIG with a message naming the field (or the JSON position) and
 * leaves *out unspecified. */
qkv_status qkv_config_from_json(const char *json, qkv_model_config *out);
qkv_status qkv_config_from_file(const char *path, qkv_model_config *out);
/* Checks a config built in code (same rules and messages as the parser). */
qkv_status qkv_config_validate(const qkv_model_config *c);
/* Writes every field as a JSON object; the caller frees *json with free().
 * qkv_config_from_json(json) gives back an equal config. */
qkv_status qkv_config_to_json(const qkv_model_config *c, char **json);

/* A loaded model: configuration plus one parameter buffer. Never modified by
 * training or translation calls other than through qkv_model_params(), so one
 * model may serve several threads, each with its own state. */
typedef struct qkv_model qkv_model;

/* Validates the config and initialises the parameters from seed: Xavier
 * uniform for matrices, normal(0, d_model^-0.5) for embeddings, zeros for
 * biases, ones for layer-norm weights. */
qkv_status qkv_model_new(const qkv_model_config *c, uint64_t seed, qkv_model **out);
void qkv_model_free(qkv_model *m);
const qkv_model_config *qkv_model_get_config(const qkv_model *m);
/* Total number of floats in the parameter buffer (tied weights once). */
size_t qkv_model_num_params(const qkv_model *m);
/* The whole parameter buffer (num_params floats), for loading and saving. */
float *qkv_model_params(qkv_model *m);
/* Number of named parameters and the i-th one's name, offset and shape. */
int qkv_model_num_tensors(const qkv_model *m);
typedef struct {
    const char *name; /* Hugging Face Marian style, e.g. "encoder.layers.0.fc1.weight" */
    size_t offset;    /* in floats, into the parameter buffer */
    size_t size;      /* floats */
    int ndim;         /* 1 or 2 */
    int shape[2];     /* PyTorch layout: [out, in] for weights */
} qkv_tensor_info;
qkv_status qkv_model_tensor(const qkv_model *m, int i, qkv_tensor_info *out);
/* Looks a parameter up by name; returns a pointer into the buffer (and its
 * description if info is not NULL), or NULL with QKV_ERR_ARG recorded. */
float *qkv_model_find(qkv_model *m, const char *name, qkv_tensor_info *info);

/* ---- evaluation: sacreBLEU-compatible BLEU and chrF (src/eval/) ---------- */

/* The tokenizers of sacreBLEU 2.x: '13a' (default, mteval-v13a), 'zh' (CJK
 * characters one per token, the rest as 13a), 'intl' (mteval-v14 Unicode
 * punctuation and symbols), 'char' (every character), 'none'. */
typedef enum { QKV_TOK_13A = 0, QKV_TOK_ZH, QKV_TOK_INTL, QKV_TOK_CHAR, QKV_TOK_NONE } qkv_bleu_tokenizer;

/* sacreBLEU's smoothing methods; 'exp' is its default. */
typedef enum { QKV_SMOOTH_EXP = 0, QKV_SMOOTH_NONE, QKV_SMOOTH_FLOOR, QKV_SMOOTH_ADD_K } qkv_bleu_smooth;

#define QKV_BLEU_MAX_ORDER 8

typedef struct {
    qkv_bleu_tokenizer tokenize; /* QKV_TOK_13A */
    int lowercase;               /* 0 */
    qkv_bleu_smooth smooth;      /* QKV_SMOOTH_EXP */
    double smooth_value;         /* < 0: sacreBLEU's default (floor 0.1, add-k 1) */
    int max_ngram_order;         /* 4; 1..QKV_BLEU_MAX_ORDER */
    int effective_order;         /* 0; sacreBLEU's sentence_bleu() uses 1 */
} qkv_bleu_options;

typedef struct {
    double score; /* 0..100 */
    /* matched and total hypothesis n-grams per order (before add-k) */
    int64_t counts[QKV_BLEU_MAX_ORDER], totals[QKV_BLEU_MAX_ORDER];
    double precisions[QKV_BLEU_MAX_ORDER]; /* percentages, smoothed */
    double bp, ratio;                      /* brevity penalty, sys_len / ref_len */
    int64_t sys_len, ref_len;
    int max_ngram_order;
    int n_refs; /* references per sentence; -1 when it varies */
} qkv_bleu_result;

qkv_bleu_options qkv_bleu_default_options(void);

/* "13a", "zh", ... ; parse accepts the same names. */
const char *qkv_bleu_tokenizer_name(qkv_bleu_tokenizer t);
qkv_status qkv_bleu_tokenizer_parse(const char *name, qkv_bleu_tokenizer *t);

/* sacreBLEU's BLEU preprocessing of one line: optional lowercasing, trailing
 * whitespace removed, then the tokenizer. *out is malloc'ed (caller frees).
 * Fails on invalid UTF-8. */
qkv_status qkv_bleu_tokenize(const char *line, qkv_bleu_tokenizer tok, int lowercase, char **out);

/* Corpus BLEU of n_sent hypotheses against n_refs reference streams:
 * refs[k][i] is reference k of sentence i (NULL: sentence i has no k-th
 * reference; each sentence needs at least one). Same numbers as sacreBLEU's
 * BLEU(...).corpus_score(hyps, refs); n_sent = 1 gives sentence_score(). */
qkv_status qkv_bleu(const char *const *hyps, const char *const *const *refs, int n_sent, int n_refs,
                    const qkv_bleu_options *o, qkv_bleu_result *r);

/* Writes sacreBLEU's text line into buf (snprintf semantics, returns the
 * length it needed), e.g. "BLEU|nrefs:1|case:mixed|eff:no|tok:13a|
 * smooth:exp|version:qkv-0.1.0 = 34.12 65.3/40.1/27.6/19.0 (BP = 1.000
 * ratio = 1.012 hyp_len = 1234 ref_len = 1219)"; without the signature
 * when signature is 0. */
int qkv_bleu_format(char *buf, size_t size, const qkv_bleu_result *r, const qkv_bleu_options *o, int signature);

#define QKV_CHRF_MAX_ORDER 16 /* char_order + word_order */

typedef struct {
    int char_order;    /* 6 */
    int word_order;    /* 0; 2 gives chrF++ */
    int beta;          /* 2 */
    int lowercase;     /* 0 */
    int whitespace;    /* 0: whitespace removed before character n-grams */
    int eps_smoothing; /* 0: sacreBLEU 2.x's effective-order average */
} qkv_chrf_options;

typedef struct {
    double score; /* 0..100 */
    /* corpus sums per order (characters 1..char_order, then words):
     * stats[3*i] hypothesis n-grams, [3*i+1] reference n-grams, [3*i+2] matches */
    int64_t stats[3 * QKV_CHRF_MAX_ORDER];
    int char_order, word_order, beta;
    int n_refs; /* -1 when it varies */
} qkv_chrf_result;

qkv_chrf_options qkv_chrf_default_options(void);

/* Corpus chrF (chrF++ with word_order 2), references laid out as for
 * qkv_bleu; same numbers as sacreBLEU's CHRF(...).corpus_score(). */
qkv_status qkv_chrf(const char *const *hyps, const char *const *const *refs, int n_sent, int n_refs,
                    const qkv_chrf_options *o, qkv_chrf_result *r);

/* "chrF2|nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:qkv-0.1.0 = 55.12"
 * (snprintf semantics). */
int qkv_chrf_format(char *buf, size_t size, const qkv_chrf_result *r, const qkv_chrf_options *o, int signature);

/* ---- vocabulary training (src/text/train_*.c) ----------------------------- */

typedef enum { QKV_VOCAB_UNIGRAM = 1, QKV_VOCAB_BPE = 2 } qkv_vocab_type;

/* Options of qkv_vocab_train, in sentencepiece's spirit (spm_train's flag of
 * the same name in brackets). Ids of -1 mean "absent"; unk must be present. */
typedef struct {
    qkv_vocab_type type;       /* unigram [model_type] */
    int vocab_size;            /* 8000: exact size, special pieces included */
    float character_coverage;  /* <= 0 (default): 1.0 when the text has at most
                                  1000 distinct characters, else 0.9995 */
    int byte_fallback;         /* 0: add the 256 <0xXX> pieces for unknown chars */
    const char *normalization; /* "nmt_nfkc" (default) or "identity" */
    int unk_id, bos_id, eos_id, pad_id; /* 0, 1, 2, -1 (Marian style: unk 1, bos -1, eos 0) */
    const char *const *user_defined_symbols; /* pieces kept whole, ids after the specials */
    int n_user_defined_symbols;
    long max_sentences;        /* 0: all; else a seeded sample [input_sentence_size] */
    int max_sentence_bytes;    /* 4192: longer lines are skipped [max_sentence_length] */
    int max_piece_length;      /* 16 [max_sentencepiece_length] */
    int split_digits;          /* 0: digits as pieces of their own */
    int split_by_number;       /* 1 */
    int split_by_unicode_script; /* 1 */
    int seed_pieces;           /* 1000000 [seed_sentencepiece_size], unigram */
    float shrinking_factor;    /* 0.75, unigram */
    int em_sub_iterations;     /* 2 [num_sub_iterations], unigram */
    uint64_t seed;             /* 1: sampling; same seed, same bytes (any thread count) */
    int threads;               /* <= 0: qkv_get_threads() */
    /* Progress lines for long runs (no newline); NULL: silent. */
    void (*progress)(void *ctx, const char *line);
    void *progress_ctx;
} qkv_vocab_train_options;

qkv_vocab_train_options qkv_vocab_train_default_options(void);

/* Trains a vocabulary on the UTF-8 text files (one sentence per line) and
 * writes PREFIX.model (a SentencePiece ModelProto) and PREFIX.vocab (piece
 * TAB score per line), each atomically. */
qkv_status qkv_vocab_train(const qkv_vocab_train_options *opt, const char *const *inputs, int n_inputs,
                           const char *out_prefix);

/* ---- subword vocabularies: SentencePiece models (src/text/spm_*.c) -------- */

/* A loaded SentencePiece model (unigram, BPE, word or char; any
 * normalizer), immutable after load: one vocabulary may serve many threads.
 * Encoding matches the sentencepiece library (0.1.97) id for id. */
typedef struct qkv_vocab qkv_vocab;

/* Loads a SentencePiece .model file. QKV_ERR_FORMAT for a truncated or
 * malformed file or an inconsistent vocabulary (no <unk>, duplicate pieces,
 * missing byte pieces with byte_fallback). On success the caller owns *out
 * (qkv_vocab_free). */
qkv_status qkv_vocab_load(const char *path, qkv_vocab **out);
/* The same from a serialized ModelProto in memory (copied). */
qkv_status qkv_vocab_load_memory(const void *data, size_t len, qkv_vocab **out);
/* Writes the vocabulary as a SentencePiece .model file (atomically), loadable
 * by sentencepiece; fields qkv does not interpret are kept as read. */
qkv_status qkv_vocab_save(const qkv_vocab *v, const char *path);
void qkv_vocab_free(qkv_vocab *v);

/* Number of pieces (ids are 0 .. size-1). */
int qkv_vocab_size(const qkv_vocab *v);
/* The piece of id (UTF-8, owned by v) or NULL when id is out of range. */
const char *qkv_vocab_piece(const qkv_vocab *v, int id);
/* The id of a piece, or the unknown id when it is not in the vocabulary. */
int qkv_vocab_piece_to_id(const qkv_vocab *v, const char *piece);
/* Special ids, -1 when the model has none. */
int qkv_vocab_unk_id(const qkv_vocab *v);
int qkv_vocab_bos_id(const qkv_vocab *v);
int qkv_vocab_eos_id(const qkv_vocab *v);
int qkv_vocab_pad_id(const qkv_vocab *v);

/* Normalizes and encodes text[0..len) (UTF-8; malformed bytes are read as
 * U+FFFD, as sentencepiece does, and counted in *n_invalid, which may be
 * NULL). *ids is malloc'ed (caller frees; may be NULL when *n is 0). */
qkv_status qkv_vocab_encode(const qkv_vocab *v, const char *text, size_t len, int **ids, size_t *n,
                            size_t *n_invalid);
/* Decodes ids into UTF-8 text (malloc'ed, NUL-terminated; *len excludes
 * the NUL): control pieces vanish, <unk> becomes " \u2047 ", byte pieces
 * are reassembled (invalid bytes give U+FFFD), U+2581 becomes a space and
 * the leading one is dropped. QKV_ERR_ARG for an id out of range. */
qkv_status qkv_vocab_decode(const qkv_vocab *v, const int *ids, size_t n, char **text, size_t *len);

/* ---- pictures: SVG attention heatmaps and training curves (src/viz/) ---- */

/* Attention heatmaps of one layer: one panel per head plus the mean over
 * heads (when there are several), source tokens along the top (rotated), target tokens down the left,
 * and a colour legend (0 to the largest weight). weights: [n_heads][n_tgt]
 * [n_src], row t is target token t's attention over the source. Tokens are
 * UTF-8 (escaped for XML; invalid bytes shown as U+FFFD); title may be NULL.
 * The file is written atomically. */
qkv_status qkv_viz_attention_svg(const char *path, const char *const *src_tokens, int n_src,
                                 const char *const *tgt_tokens, int n_tgt, const float *weights, int n_heads,
                                 const char *title);

/* The same for several layers: a grid with one row per layer (heads and the
 * layer's mean across). weights: [n_layers][n_heads][n_tgt][n_src]. */
qkv_status qkv_viz_attention_layers_svg(const char *path, const char *const *src_tokens, int n_src,
                                        const char *const *tgt_tokens, int n_tgt, const float *weights,
                                        int n_layers, int n_heads, const char *title);

/* One named series of a line chart; NaN values leave gaps. */
typedef struct {
    const char *name;
    const double *x, *y;
    int n;
} qkv_viz_series;

/* Small multiples: one panel per series, each with its own axes, ticks and
 * labels (x label x_label, e.g. "step"). Written atomically. */
qkv_status qkv_viz_curves_svg(const char *path, const qkv_viz_series *series, int n_series, const char *x_label,
                              const char *title);

/* Reads a training log in JSON Lines (one object per line, as qkv train
 * writes it) and draws every numeric key other than "step" against "step",
 * one panel per key, to svg_path. Blank lines are skipped; lines without a
 * numeric "step" are skipped and counted in *skipped (may be NULL). A line
 * that is not a JSON object fails with QKV_ERR_FORMAT naming its number. */
qkv_status qkv_viz_plot_log(const char *log_path, const char *svg_path, const char *title, int *skipped);

/* ---- translation: greedy, beam search, sampling, scoring (src/decode/) --- */

/* How hypotheses of different lengths are compared (len = generated tokens,
 * EOS included, forced prefix excluded; exactly the length transformers'
 * BeamHypotheses.add divides by):
 *   POWER: score = logprob / len^alpha   (transformers' length_penalty)
 *   GNMT:  score = logprob / ((5 + len) / 6)^alpha   (Wu et al. 2016) */
typedef enum { QKV_LENGTH_PENALTY_POWER = 0, QKV_LENGTH_PENALTY_GNMT = 1 } qkv_length_penalty_kind;

/* When beam search stops working on a sentence that has beam_size finished
 * hypotheses (transformers' early_stopping):
 *   HEURISTIC (early_stopping=False, its default): when the best running
 *     beam, scored at the current length, cannot beat the worst finished one;
 *   TRUE: at once;
 *   NEVER (early_stopping="never"): only when no running beam can beat it
 *     at any length up to max_length (exact for alpha > 0). */
typedef enum {
    QKV_EARLY_STOPPING_HEURISTIC = 0,
    QKV_EARLY_STOPPING_TRUE = 1,
    QKV_EARLY_STOPPING_NEVER = 2
} qkv_early_stopping;

/* Options of one translation job. Lengths follow generate(): a target
 * sequence starts with the decoder start token, which counts in max_length
 * and min_length but not in the length penalty. */
typedef struct {
    int beam_size;               /* 0: model default (a Marian directory's num_beams, else 4); 1: greedy */
    int n_best;                  /* 1: hypotheses returned per sentence (<= beam_size, or num_samples);
                                    0: all of them */
    qkv_length_penalty_kind length_penalty_kind; /* POWER */
    float length_penalty;        /* 1.0: alpha */
    qkv_early_stopping early_stopping;           /* HEURISTIC */
    int max_length;              /* 0: model default (Marian max_length, else max_positions + 1);
                                    at most max_length - 1 tokens are generated, EOS included */
    float max_length_ratio;      /* 0: off; else also max_length <= ratio * source tokens + offset + 1 */
    int max_length_offset;       /* 0 */
    int min_length;              /* 0: EOS is masked while the sequence is shorter than this */
    int no_repeat_ngram_size;    /* 0: off; no n-gram of the sequence (start token included) occurs twice */
    float repetition_penalty;    /* 1.0: off; transformers' (CTRL) definition: a logit (log-prob in beam
                                    search) of an earlier token is divided by it if > 0, else multiplied */
    int forced_eos;              /* -1: model default (Marian: forced_eos_token_id; qkv: 1): at the last
                                    allowed position EOS is the only choice */
    const int *bad_word_ids;     /* NULL: model ids never generated, added to the model's own (Marian
                                    bad_words_ids; the pad id is always banned); sequences separated by -1:
                                    the last id of a sequence is banned after the ones before it */
    int n_bad_word_ids;
    const char *target_prefix;   /* NULL: text every translation must start with (fed to the decoder
                                    after the start token, not scored, as generate()'s decoder prompt) */
    int sample;                  /* 0: search; 1: sampling (beam_size ignored) */
    float temperature;           /* 1.0 */
    int top_k;                   /* 0: off */
    float top_p;                 /* 1.0: off */
    uint64_t seed;               /* 1 */
    int num_samples;             /* 1: independent samples per sentence (sorted by score) */
    int batch_size;              /* 32: sentences decoded together (sorted by source length) */
    int attention;               /* 0: 1 returns the cross-attention of each best hypothesis */
    const char *compute_type;    /* NULL ("default": the model's own, float32): the linear
                                    layers in "auto", "float32", "int8", "int8_float32", "int8_bfloat16"
                                    or "bfloat16" (CTranslate2's names; qkv_compute_type_resolve) */
} qkv_translate_options;

qkv_translate_options qkv_translate_default_options(void);
/* QKV_ERR_CONFIG naming the field when a value is out of range. */
qkv_status qkv_translate_validate_options(const qkv_translate_options *o);

/* A model with its vocabularies, ready to translate: a qkv checkpoint
 * (.qkv) or a Hugging Face Marian directory. Immutable: several threads may
 * translate with one translator at once. */
typedef struct qkv_translator qkv_translator;

qkv_status qkv_translator_load(const char *path, qkv_translator **out);
/* The same on a context the caller owns and keeps alive until
 * qkv_translator_free (NULL: the translator makes its own, with
 * qkv_context_default_options(), as qkv_translator_load does). Translators
 * on different contexts run in parallel at the same time, each with its
 * own thread count. */
qkv_status qkv_translator_load_ctx(const char *path, qkv_context *ctx, qkv_translator **out);
void qkv_translator_free(qkv_translator *t);
/* The translator's model, read-only: a qkv checkpoint's parameters may lie
 * in a read-only mapping of the file (writing them faults). */
const qkv_model *qkv_translator_model(const qkv_translator *t);
/* qkv_translate_default_options() with the model's own generation defaults
 * filled in, as generate() applies them without arguments (a Marian
 * directory: num_beams, max_length, min_length, length_penalty,
 * early_stopping, no_repeat_ngram_size, repetition_penalty, forced EOS;
 * bad_words_ids always apply). Like generate() in transformers 4.39, a
 * generation_config.json marked "_from_model_config": true is passed over
 * for config.json's values (its legacy rule; MarianConfig always meets
 * its condition). qkv checkpoints: beam 4, max_positions + 1, forced EOS. */
qkv_translate_options qkv_translator_default_options(const qkv_translator *t);

typedef struct {
    char *text;     /* detokenized */
    int *ids;       /* [n_ids] generated model ids: no start token, no prefix, no EOS */
    int n_ids;
    int ended;      /* 1 when the hypothesis ended with EOS (counted in the length) */
    float logprob;  /* sum of the log-probabilities of the generated tokens (EOS included) */
    float score;    /* logprob with the length penalty: what the search ranked by */
} qkv_hypothesis;

typedef struct {
    qkv_hypothesis *hyps; /* [n_hyps], best first; n_hyps is 0 for an empty input line */
    int n_hyps;
    int truncated;        /* source tokens dropped to fit max_positions */
    int n_src;            /* source tokens, EOS included */
    char **src_tokens;    /* [n_src] pieces; with attention only, else NULL */
    char **tgt_tokens;    /* [n_tgt] pieces of hyps[0] (EOS included); with attention only */
    int n_tgt;
    /* with attention only: [n_layers][n_heads][n_tgt][n_src], row t is
     * target token t's cross-attention over the source */
    float *attention;
    int n_layers, n_heads;
} qkv_translation;

/* Translates n lines of UTF-8 text (invalid bytes read as U+FFFD). The
 * result *out ([n], in input order) is freed with qkv_translations_free. */
qkv_status qkv_translate(const qkv_translator *t, const char *const *texts, int n,
                         const qkv_translate_options *o, qkv_translation **out);
void qkv_translations_free(qkv_translation *r, int n);

/* Forced decoding: logprob[i] = log P(tgt[i] + EOS | src[i]) (raw model
 * probabilities, no search processors) and n_tokens[i] the tokens scored
 * (EOS included; may be NULL). With attention set in o (may be NULL), out
 * (may be NULL) receives each pair's cross-attention as qkv_translate does. */
qkv_status qkv_translate_score(const qkv_translator *t, const char *const *src, const char *const *tgt, int n,
                               const qkv_translate_options *o, double *logprob, int *n_tokens,
                               qkv_translation **out);

/* ---- Protected spans: placeholders and markup kept ------------------------
 * Placeholders (printf, Qt %1, {brace} fields) and XML/HTML tags and entities
 * of the source are replaced by sentinel pieces before translation and put
 * back after (src/text/protect.h). Every protected span of a source appears
 * exactly once in each output: a repeated sentinel is dropped after its first
 * occurrence, a sentinel the source does not have is dropped, and a missing
 * one is inserted before the target token whose cross-attention to it
 * (summed over layers and heads, by forced decoding) is highest; a
 * placeholder or tag that the model spelled out as text is dropped, paired
 * tags that come out crossed are put back in nesting order, and the result
 * is checked: where the model's text ran into a span ("%" before "%1") its
 * '%', '{', '<', '&' are removed. When the
 * source's printf arguments (%s, %d, not positional) come out in another
 * order, they are written positionally ("%2$s ... %1$s"), as a translator
 * would, so that each argument still goes where the source sends it. */
typedef struct {
    long lines;       /* lines with at least one protected span */
    long spans;       /* protected spans in those lines */
    long exact;       /* hypotheses whose sentinels were right as generated */
    long duplicates;  /* repeated sentinels dropped */
    long strays;      /* sentinels the source did not have, dropped */
    long inserted;    /* missing sentinels inserted by cross-attention */
    long malformed;   /* malformed candidates left as text ("%z", unbalanced tags) */
    long overflow;    /* spans past the 32 sentinels, left as text */
    long literals;    /* placeholders or tags the model wrote as text, dropped */
    long reordered;   /* hypotheses whose printf arguments were reordered,
                         written positionally (%2$s ... %1$s) */
    long nested;      /* hypotheses whose crossed tags were put in nesting order */
    long scrubbed;    /* hypotheses whose text ran into a span ("%" + "%1"):
                         '%', '{', '<', '&' of the model's text removed */
    long unverified;  /* hypotheses still without the source's spans (a bug) */
} qkv_protect_stats;

/* 1 when t is a qkv checkpoint whose vocabularies hold the sentinel pieces
 * (it was trained on masked text, as `qkv protect` writes), else 0. */
int qkv_translator_protects(const qkv_translator *t);

/* qkv_translate with protected spans (t must protect). Hypothesis texts are
 * unmasked; ids are those of the masked text after the sentinel repairs
 * (before the text-level rules: literals dropped, tags nested, scrubbing); o->attention gives
 * the cross-attention of the best hypothesis before repair. stats (may be
 * NULL) is added to. */
qkv_status qkv_translate_protected(const qkv_translator *t, const char *const *texts, int n,
                                   const qkv_translate_options *o, qkv_protect_stats *stats,
                                   qkv_translation **out);

/* ---- attention inspection: every attention of one sentence (src/decode/inspect.c) */

/* All the attention of one (source, target) pair under a translator, with
 * the queries, keys and values behind it, as the model computes them in one
 * forced-decoding pass. Decoder position j reads dec_tokens[j] (the start
 * token, then the target) and predicts tgt_tokens[j] (the target, then EOS
 * when the translation ended). Arrays are [layer][head][query][key] for the
 * probabilities and [layer][head][position][head_dim] for q, k, v (biases
 * included; the scores are q.k / sqrt(head_dim) before the mask). */
typedef struct {
    char *text;         /* the target text (given or translated) */
    int n_src, n_tgt;   /* source tokens (EOS included), decoder positions */
    char **src_tokens;  /* [n_src] */
    char **dec_tokens;  /* [n_tgt] decoder inputs */
    char **tgt_tokens;  /* [n_tgt] predicted tokens */
    int enc_layers, enc_heads, dec_layers, dec_heads, enc_head_dim, dec_head_dim;
    float *enc_self;    /* [enc_layers][enc_heads][n_src][n_src] */
    float *dec_self;    /* [dec_layers][dec_heads][n_tgt][n_tgt] (causal) */
    float *cross;       /* [dec_layers][dec_heads][n_tgt][n_src] */
    float *enc_q, *enc_k, *enc_v; /* [enc_layers][enc_heads][n_src][enc_head_dim] */
    float *dec_q, *dec_k, *dec_v; /* [dec_layers][dec_heads][n_tgt][dec_head_dim] */
    float *cross_q;               /* [dec_layers][dec_heads][n_tgt][dec_head_dim] */
    float *cross_k, *cross_v;     /* [dec_layers][dec_heads][n_src][dec_head_dim] */
} qkv_attention_map;

/* tgt NULL: the target is the best translation of src under o (NULL: the
 * translator's defaults); else tgt is the target text. QKV_ERR_ARG for an
 * empty source or a target longer than max_positions. Free with
 * qkv_attention_map_free. */
qkv_status qkv_translator_attention(const qkv_translator *t, const char *src, const char *tgt,
                                    const qkv_translate_options *o, qkv_attention_map **out);
void qkv_attention_map_free(qkv_attention_map *m);

/* ---- Threads: which calls may run at once --------------------------------
 *
 * qkv_translator is built once and shared:
 *   - qkv_translate, qkv_translate_score, qkv_translator_default_options and
 *     qkv_translator_model are thread-safe: any number of threads may call
 *     them on one translator at once, and each call's result is what it
 *     would be alone (same ids, same scores, to the bit).
 *   - The decoder's weights are packed once per translator (on the first
 *     qkv_translate) and shared read-only by every call; decoding state
 *     (encoder workspace, decoder cache, search buffers) comes from a small
 *     pool in the translator: a call takes a free state or makes one, and
 *     gives it back; a state grows when a bigger call comes and serves
 *     calls of the same or a smaller size without allocating again. A
 *     one-sentence call then costs its decoding, not set-up.
 *   - qkv_translator_free must not race with any call on that translator.
 * qkv_model: const functions (qkv_model_get_config, ...) are thread-safe;
 * anything that changes parameters (training) needs the caller's exclusion.
 * qkv_last_error() is per thread. The calls of one translator share its
 * context (qkv_translator_load_ctx): calls from several threads at once
 * are correct, but only one of them at a time gets the context's pool (see
 * qkv_context); give each thread that needs parallel speed a translator on
 * its own context. */

/* ---- sentence embeddings (src/embed/, src/formats/bert.c) ------------- */

/* How token vectors become one sentence vector. DEFAULT: the model's own
 * (a sentence-transformers directory's 1_Pooling/config.json; mean for a
 * plain BERT directory and for translation encoders). */
typedef enum { QKV_POOL_DEFAULT = 0, QKV_POOL_MEAN = 1, QKV_POOL_CLS = 2, QKV_POOL_MAX = 3 } qkv_pooling;

typedef struct {
    qkv_pooling pooling; /* DEFAULT */
    int normalize;       /* -1: the model's (a listed Normalize module); 0: no; 1: unit length */
    int batch_size;      /* 32: sentences run together (grouped by length, output in input order) */
    int max_length;      /* 0: the model's (max_seq_length, else model_max_length, else positions) */
    int threads;         /* 0: the context bound to the calling thread, else $QKV_THREADS or the CPUs */
} qkv_embed_options;

qkv_embed_options qkv_embed_default_options(void);

/* Counts of what an embedding call met (any may be of interest on stderr). */
typedef struct {
    int empty;            /* lines empty or all whitespace: zero vectors */
    int truncated;        /* lines cut to max_length tokens */
    long invalid_bytes;   /* malformed UTF-8 bytes (read as U+FFFD, dropped by WordPiece) */
} qkv_embed_stats;

/* An encoder that turns sentences into vectors: a Hugging Face BERT-family
 * directory (config.json, model.safetensors, vocab.txt, optional
 * sentence-transformers modules), a Hugging Face Marian directory or a qkv
 * checkpoint (its encoder, masked mean over the output). Immutable: several
 * threads may embed with one embedder. */
typedef struct qkv_embedder qkv_embedder;

qkv_status qkv_embedder_load(const char *path, qkv_embedder **out);
void qkv_embedder_free(qkv_embedder *e);
int qkv_embedder_dim(const qkv_embedder *e);
/* "bert" or "translation-encoder". */
const char *qkv_embedder_kind(const qkv_embedder *e);

/* Embeds n lines of UTF-8 text into out [n, dim] (caller-allocated), in
 * input order. An empty line gives a zero vector (counted in stats, which
 * may be NULL). As sentence-transformers' encode(): each text is stripped,
 * tokenized and truncated to max_length ids. */
qkv_status qkv_embed(const qkv_embedder *e, const char *const *texts, int n, const qkv_embed_options *o,
                     float *out, qkv_embed_stats *stats);

/* Cosine similarity search: for each of nq queries [nq, dim] the k (<= nc)
 * nearest of nc corpus vectors [nc, dim] by cosine, best first (ties to the
 * lower index), as one matrix product per block of queries and a top-k.
 * Zero vectors have cosine 0 with everything. idx, score: [nq, k]. */
qkv_status qkv_embed_search(const float *queries, int nq, const float *corpus, int nc, int dim, int k, int *idx,
                            float *score);

/* Cosine of each pair of rows of a and b, [n, dim] each; out: [n]. */
qkv_status qkv_embed_cosine_pairs(const float *a, const float *b, int n, int dim, float *out);

/* A saved corpus index: its embeddings, its lines and the model that made
 * them, so that `qkv search --index` need not embed the corpus again. The
 * file (src/embed/index.c draws its layout) starts with a magic and a
 * version and ends with a checksum; it is written atomically. */
typedef struct {
    int n, dim;
    float *vectors;      /* [n, dim] */
    char **lines;        /* [n] NUL-terminated */
    char *model;         /* the model path given at embedding time */
    int normalized;      /* vectors were L2-normalised */
} qkv_embed_index;

qkv_status qkv_embed_index_save(const char *path, const qkv_embed_index *ix);
/* QKV_ERR_FORMAT naming the file and what is wrong for a bad magic, version,
 * size or checksum. Free with qkv_embed_index_free. */
qkv_status qkv_embed_index_load(const char *path, qkv_embed_index *out);
void qkv_embed_index_free(qkv_embed_index *ix);

/* A linear softmax classifier on frozen sentence embeddings: logits =
 * W e + b for the embedding e of a text, trained with the project's AdamW
 * on cross-entropy. The file (src/embed/classify.c draws its layout) holds
 * the encoder's path and embedding options, the labels and W, b; loading it
 * loads the encoder too. */
typedef struct qkv_classifier qkv_classifier;

typedef struct {
    int epochs;          /* 30: passes over the training set */
    int batch_size;      /* 64 */
    float lr;            /* 1e-2: constant */
    float weight_decay;  /* 1e-4: AdamW's decoupled decay on W */
    uint64_t seed;       /* 1: initialisation and shuffling; same seed, same classifier */
    qkv_embed_options embed; /* how texts are embedded (stored in the classifier) */
    /* one line per epoch (no newline); NULL: silent */
    void (*progress)(void *ctx, const char *line);
    void *progress_ctx;
} qkv_classify_options;

qkv_classify_options qkv_classify_default_options(void);

/* Embeds the n training texts with the encoder at encoder_path (once) and
 * fits the head; with dev texts (n_dev > 0) the epoch of best dev accuracy
 * is kept, else the last. Labels are any strings (their sorted set is the
 * classifier's label list). */
qkv_status qkv_classifier_train(const char *encoder_path, const char *const *texts, const char *const *labels, int n,
                                const char *const *dev_texts, const char *const *dev_labels, int n_dev,
                                const qkv_classify_options *o, qkv_classifier **out);
qkv_status qkv_classifier_save(const qkv_classifier *c, const char *path);
qkv_status qkv_classifier_load(const char *path, qkv_classifier **out);
void qkv_classifier_free(qkv_classifier *c);
int qkv_classifier_num_labels(const qkv_classifier *c);
const char *qkv_classifier_label(const qkv_classifier *c, int i);

/* For each text the best label's index and probability; probs (may be NULL)
 * receives all of them, [n, num_labels]. An empty text gets the prior of a
 * zero embedding (softmax of b). */
qkv_status qkv_classifier_predict(const qkv_classifier *c, const char *const *texts, int n, int *label, float *prob,
                                  float *probs);

/* Accuracy and macro-F1 (scikit-learn's f1_score(average="macro"): the
 * mean F1 over the labels present in gold or predicted) of predicted
 * against gold label strings. */
void qkv_classify_scores(const char *const *gold, const char *const *pred, int n, double *accuracy,
                         double *macro_f1);

/* ---- compute types (CTranslate2's names) ---------------------------------- */

/* Resolves a compute type name to the one used on this CPU, *resolved being
 * one of "float32", "int8", "bfloat16" (as CTranslate2's compute_type):
 *   - default (also NULL or ""): the model's own type: float32, or the
 *     type a `qkv quantize` checkpoint was written in;
 *   - float32: every product in fp32;
 *   - int8, int8_float32, int8_bfloat16: the linear layers of the encoder
 *     and the decoder (attention projections, feed-forward, output
 *     projection) have int8 weights (per output row, scale 127 / max|w|),
 *     activations are quantized per row at run time, products are u8 x s8
 *     -> s32 (AVX512-VNNI, else AVX2 vpmaddubsw, else C), dequantized to
 *     fp32. Embeddings, layer norms, softmax, the attention scores and the
 *     residual stream stay in fp32: they are a small share of the time and
 *     the most sensitive to rounding (int8_bfloat16 is therefore int8 here);
 *   - bfloat16: the same layers with bf16 weights and bf16-rounded
 *     activations, fp32 accumulation (AVX512-BF16 vdpbf16ps, else widened
 *     to fp32 in registers);
 *   - auto: the fastest type the kernel path in use runs natively (the rule
 *     is in the README's "Compute types"); `qkv version` prints the choice.
 * QKV_ERR_CONFIG for an unknown name. */
qkv_status qkv_compute_type_resolve(const char *name, const char **resolved);

#ifdef __cplusplus
}
#endif
#endif /* QKV_H */
