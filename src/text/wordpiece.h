/* WordPiece tokenization, id for id as transformers' BertTokenizer (4.39,
 * tokenization_bert.py, the slow "Python" tokenizer):
 *
 *   text --split out literal special tokens ([CLS], [SEP], ... as the
 *          added-tokens trie does)--> segments; for each other segment:
 *     lower-case every character (PreTrainedTokenizer.tokenize, do_lower_case)
 *     _clean_text: drop NUL, U+FFFD and control characters (category C*
 *       except \t \n \r); whitespace (\t \n \r, Zs) becomes " "
 *     _tokenize_chinese_chars: spaces around CJK ideographs
 *     NFC, then split on whitespace (str.split)
 *     per word: lower-case again (str.lower, Final_Sigma included), strip
 *       accents (NFD, drop Mn) when strip_accents says so, split off every
 *       punctuation character
 *     greedy longest-match-first word pieces, continuations as "##piece";
 *       a word over max_input_chars_per_word characters, or one with no
 *       matching split, is [UNK]
 *   then [CLS] ids [SEP], truncated so that at most max_length ids remain.
 *
 * Malformed UTF-8 bytes read as U+FFFD, which _clean_text drops: they
 * vanish and are counted. Immutable after load: one tokenizer may serve
 * many threads. */
#ifndef QKV_TEXT_WORDPIECE_H
#define QKV_TEXT_WORDPIECE_H

#include <stddef.h>

#include "qkv.h"

typedef struct {
    int do_lower_case;            /* 1 */
    int strip_accents;            /* -1: as do_lower_case (transformers' None); 0: no; 1: yes */
    int tokenize_chinese_chars;   /* 1 */
    int max_input_chars_per_word; /* 100 */
    int model_max_length;         /* 512: 0 or less means no limit */
    /* special tokens (NULL: the default names) */
    const char *unk_token, *sep_token, *pad_token, *cls_token, *mask_token;
} wp_options;

wp_options wp_default_options(void);

typedef struct qkv_wordpiece qkv_wordpiece;

/* Loads vocab.txt (one token per line, id = line number, lines ended by
 * \n, \r\n or \r as Python reads them; a repeated token takes its last
 * line's id). QKV_ERR_IO when missing, QKV_ERR_FORMAT naming the line for
 * invalid UTF-8, an empty file or a special token that is missing. */
qkv_status wp_load(const char *vocab_path, const wp_options *o, qkv_wordpiece **out);

/* Loads DIR/vocab.txt with DIR/tokenizer_config.json when present
 * (do_lower_case, strip_accents, tokenize_chinese_chars, model_max_length,
 * the special token names; a "tokenizer_class" other than BertTokenizer /
 * BertTokenizerFast is QKV_ERR_UNSUPPORTED). */
qkv_status wp_load_dir(const char *dir, qkv_wordpiece **out);

void wp_free(qkv_wordpiece *w);

int wp_vocab_size(const qkv_wordpiece *w); /* number of lines */
/* The id of a token, -1 when absent. */
int wp_token_id(const qkv_wordpiece *w, const char *token);
const char *wp_id_token(const qkv_wordpiece *w, int id); /* NULL out of range */
int wp_cls_id(const qkv_wordpiece *w);
int wp_sep_id(const qkv_wordpiece *w);
int wp_pad_id(const qkv_wordpiece *w);
int wp_unk_id(const qkv_wordpiece *w);
int wp_model_max_length(const qkv_wordpiece *w); /* 0: no limit */
const wp_options *wp_get_options(const qkv_wordpiece *w);

/* Encodes text[0..len) to ids. With add_special, [CLS] first and [SEP]
 * last. max_length > 0 truncates to at most that many ids (specials
 * included; the last tokens go, [SEP] stays); *truncated (may be NULL)
 * says whether anything went. *n_invalid (may be NULL) counts malformed
 * UTF-8 bytes. *ids is malloc'ed (caller frees). */
qkv_status wp_encode(const qkv_wordpiece *w, const char *text, size_t len, int add_special, int max_length,
                     int **ids, size_t *n, size_t *n_invalid, int *truncated);

#endif
