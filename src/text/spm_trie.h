/* A byte trie over strings, for the piece vocabulary (unigram lattice, BPE
 * pair lookup) and the user-defined-symbol prefix matcher.
 *
 * Nodes are integers (0 is the root); an edge (node, byte) -> child lives in
 * an open-addressing hash table, with a direct 256-entry table for the root's
 * children because every lookup starts there. */
#ifndef QKV_TEXT_SPM_TRIE_H
#define QKV_TEXT_SPM_TRIE_H

#include <stddef.h>
#include <stdint.h>

#include "qkv.h"

typedef struct {
    uint64_t *keys;  /* (node << 8 | byte) + 1; 0 = empty slot */
    int32_t *child;
    size_t cap;      /* power of two */
    size_t n_edges;
    int32_t root[256];
    int32_t *value;  /* [n_nodes]: value stored at the node or -1 */
    int n_nodes, value_cap;
} spm_trie;

void spm_trie_init(spm_trie *t);
void spm_trie_free(spm_trie *t);
/* Adds s[0..len) with value (>= 0). An existing key keeps its first value
 * (as sentencepiece's InsertIfNotPresent). *added says whether it was new. */
qkv_status spm_trie_add(spm_trie *t, const char *s, size_t len, int value, int *added);

static inline int spm_trie_child(const spm_trie *t, int node, unsigned char c)
{
    if (node == 0)
        return t->root[c];
    if (!t->cap)
        return -1;
    uint64_t key = ((uint64_t)node << 8 | c) + 1;
    size_t mask = t->cap - 1;
    size_t h = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & mask;
    while (t->keys[h]) {
        if (t->keys[h] == key)
            return t->child[h];
        h = (h + 1) & mask;
    }
    return -1;
}

/* Value of s[0..len) or -1. */
int spm_trie_find(const spm_trie *t, const char *s, size_t len);

/* Length of the longest key that is a prefix of s[0..len), 0 if none. */
size_t spm_trie_longest_prefix(const spm_trie *t, const char *s, size_t len);

#endif
