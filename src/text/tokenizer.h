/* The text <-> model-id layer shared by `qkv translate` and training.
 *
 * A tokenizer holds a source and a target SentencePiece model and, for
 * Hugging Face Marian directories, a piece -> model-id map per side (Marian's
 * vocab.json, and target_vocab.json with separate vocabularies). Two kinds:
 *
 *   - spm ids (qkv's own checkpoints): model ids are the SentencePiece ids;
 *   - Marian: text -> source.spm pieces -> vocab.json ids; ids -> pieces
 *     (inverse of the target map) -> target.spm decode, as transformers'
 *     MarianTokenizer (4.39, tokenization_marian.py) does.
 *
 * Immutable after load: one tokenizer may serve many threads. Keep this a
 * leaf of text/ (no model/ dependency). */
#ifndef QKV_TEXT_TOKENIZER_H
#define QKV_TEXT_TOKENIZER_H

#include <stddef.h>

#include "qkv.h"

typedef struct qkv_tokenizer qkv_tokenizer;

/* Loads qkv's own pair of SentencePiece models; tgt_spm NULL (or equal to
 * src_spm) shares one model. Model ids are spm ids; eos is the spm's eos
 * piece (appended to encoded sentences when the model has one), pad its pad
 * piece (-1 when absent), the decoder start its bos piece (-1 when absent). */
qkv_status qkv_tokenizer_load_spm(const char *src_spm, const char *tgt_spm, qkv_tokenizer **out);

/* The same from serialized ModelProtos in memory (copied), as qkv
 * checkpoints hold them; tgt NULL shares the source model. */
qkv_status qkv_tokenizer_load_spm_memory(const void *src, size_t src_len, const void *tgt, size_t tgt_len,
                                         qkv_tokenizer **out);

/* Loads the tokenizer of a Hugging Face Marian directory: source.spm,
 * target.spm, vocab.json, tokenizer_config.json (optional: special token
 * names, separate_vocabs, clean_up_tokenization_spaces) and, with
 * separate_vocabs, target_vocab.json. Errors name the file and the field. */
qkv_status qkv_tokenizer_load_marian(const char *dir, qkv_tokenizer **out);

void qkv_tokenizer_free(qkv_tokenizer *t);

/* Source text -> model ids, with eos appended (MarianTokenizer(text)
 * .input_ids). In Marian mode a leading language code ">>xx<<" becomes one
 * token of its own and every ">>...<<" is removed from the text, as
 * MarianTokenizer does; pieces that vocab.json lacks map to <unk>. *ids is
 * malloc'ed (caller frees), *n includes the eos. */
qkv_status qkv_tokenizer_encode_source(const qkv_tokenizer *t, const char *text, size_t len, int **ids,
                                       size_t *n);

/* Target text -> model ids with eos appended (tokenizer(text_target=...)),
 * through target.spm and the target map: the labels for training. */
qkv_status qkv_tokenizer_encode_target(const qkv_tokenizer *t, const char *text, size_t len, int **ids,
                                       size_t *n);

/* Model ids -> text, as MarianTokenizer.decode(ids, skip_special_tokens=True):
 * the special ids (eos, pad, unk) are skipped, the others become pieces that
 * target.spm decodes; an id outside the target map reads "<unk>" literally;
 * U+2581 becomes a space, surrounding (Unicode) whitespace is stripped and,
 * unless tokenizer_config.json sets clean_up_tokenization_spaces to false,
 * transformers' clean_up_tokenization is applied (" ." -> ".", " 's" -> "'s",
 * ...). In spm mode: eos and pad are skipped, the rest is spm decode.
 * Skipped ids are the target map's specials; transformers compares with the
 * source map's, which differs only for separate vocabularies that place the
 * special tokens at different ids. <unk> is skipped like eos and pad, as
 * transformers does (it is one of all_special_ids).
 * *text is malloc'ed and NUL-terminated (caller frees); len may be NULL.
 * Spm mode: QKV_ERR_ARG for an id outside the vocabulary (Marian mode has
 * no error: such ids read "<unk>" as in transformers). */
qkv_status qkv_tokenizer_decode_target(const qkv_tokenizer *t, const int *ids, size_t n, char **text,
                                       size_t *len);

/* The piece of a target / source id (owned by t), NULL when the id has none. */
const char *qkv_tokenizer_target_piece(const qkv_tokenizer *t, int id);
const char *qkv_tokenizer_source_piece(const qkv_tokenizer *t, int id);

/* Marian mode: the names of the eos, unk and pad tokens (tokenizer_config.json
 * or "</s>", "<unk>", "<pad>") and whether decoding applies transformers'
 * clean_up_tokenization; spm mode: NULLs and 0. */
void qkv_tokenizer_special_names(const qkv_tokenizer *t, const char **eos, const char **unk, const char **pad,
                                 int *cleanup);

/* Special model ids (-1 when absent). In Marian mode eos, unk and pad are the
 * ids of "</s>", "<unk>" and "<pad>" (or the names tokenizer_config.json
 * gives) in the source map; the target side's are used for decoding. The
 * decoder start id is the pad id, as Marian's config.json sets it. */
int qkv_tokenizer_pad_id(const qkv_tokenizer *t);
int qkv_tokenizer_eos_id(const qkv_tokenizer *t);
int qkv_tokenizer_unk_id(const qkv_tokenizer *t);
int qkv_tokenizer_decoder_start_id(const qkv_tokenizer *t);

/* Number of model ids on each side (largest id + 1 in Marian mode). */
int qkv_tokenizer_src_vocab_size(const qkv_tokenizer *t);
int qkv_tokenizer_tgt_vocab_size(const qkv_tokenizer *t);
/* 1 when the model ids come from vocab.json (Marian), 0 for spm ids. */
int qkv_tokenizer_is_marian(const qkv_tokenizer *t);
/* 1 when one map serves both sides (Marian's joint vocab.json, or one spm). */
int qkv_tokenizer_shared_vocab(const qkv_tokenizer *t);

/* The SentencePiece models (owned by t). */
const qkv_vocab *qkv_tokenizer_source_spm(const qkv_tokenizer *t);
const qkv_vocab *qkv_tokenizer_target_spm(const qkv_tokenizer *t);

#endif
