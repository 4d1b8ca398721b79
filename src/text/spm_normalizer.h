/* sentencepiece's normalizer: the precompiled character map (a Darts-clone
 * double-array trie of source strings plus a blob of NUL-terminated
 * replacements, applied by longest prefix match), then the whitespace rules
 * (drop leading/trailing/repeated spaces, a dummy "▁" prefix or suffix,
 * spaces escaped as U+2581). User-defined symbols are copied unnormalized.
 * The model spec must outlive the normalizer (the trie is borrowed from it
 * where aligned, otherwise copied). */
#ifndef QKV_TEXT_SPM_NORMALIZER_H
#define QKV_TEXT_SPM_NORMALIZER_H

#include <stddef.h>
#include <stdint.h>

#include "qkv.h"
#include "text/spm_model.h"
#include "text/spm_trie.h"

/* A growable byte string. */
typedef struct {
    char *p;
    size_t len, cap;
} spm_str;

qkv_status spm_str_reserve(spm_str *s, size_t cap);
void spm_str_free(spm_str *s);

typedef struct {
    const spm_normalizer_spec *spec;
    uint32_t *trie;         /* double-array units (own copy, host order) */
    size_t trie_units;
    const char *strings;    /* replacement blob, borrowed from spec */
    size_t strings_len;
    int treat_whitespace_as_suffix;
    const spm_trie *user_symbols; /* may be NULL: not owned */
} spm_normalizer;

/* Checks and decodes spec's precompiled charsmap (QKV_ERR_FORMAT if its
 * header is inconsistent). user_symbols: trie of the user-defined pieces or
 * NULL. */
qkv_status spm_normalizer_init(spm_normalizer *n, const spm_normalizer_spec *spec, int treat_whitespace_as_suffix,
                               const spm_trie *user_symbols);
void spm_normalizer_free(spm_normalizer *n);

/* Normalizes in[0..len) into out (overwritten). *n_invalid (may be NULL) is
 * set to the number of malformed UTF-8 bytes replaced by U+FFFD. */
qkv_status spm_normalize(const spm_normalizer *n, spm_str *out, const char *in, size_t len, size_t *n_invalid);

/* For the trainers: normalizes text as a model with m's normalizer spec,
 * treat_whitespace_as_suffix and user-defined pieces would before encoding.
 * *out is malloc'ed (NUL-terminated; *out_len excludes the NUL). Builds the
 * normalizer on every call: for many lines, use spm_normalizer_init once. */
qkv_status spm_normalize_text(const spm_model *m, const char *in, size_t len, char **out, size_t *out_len,
                              size_t *n_invalid);

#endif
