/* The unigram trainer's pieces and lattices (train_lattice.c), shared by
 * the EM and pruning steps in train_unigram.c.
 *
 * A lattice holds every piece occurring in a word (nodes grouped by start
 * position, shorter first) plus an unknown node, scoring min_score - 10 as in
 * sentencepiece's unigram_model.cc, where no one-character piece exists. */
#ifndef QKV_TEXT_TRAIN_LATTICE_H
#define QKV_TEXT_TRAIN_LATTICE_H

#include <stddef.h>
#include <stdint.h>

#include "text/train.h"

#define UNK_PENALTY 10.0

/* A code-point trie over the pieces, for building lattices: an edge
 * (node, c) -> child is one 16-byte slot of an open-addressing table, so
 * walking a word costs one probe per character. */
typedef struct {
    uint64_t key; /* (node << 21 | c) + 1; 0: empty */
    int32_t child;
    int32_t piece; /* piece spelled by the path to child, or -1 */
} trie_slot;

#define TRIE_ROOT_DIRECT 0x10000 /* root edges of the BMP: a direct table (every lattice position starts there) */

typedef struct {
    trie_slot *slot;
    size_t cap; /* power of two */
    int n_nodes;
    trie_slot *root; /* [TRIE_ROOT_DIRECT], key 0 when absent */
} cp_trie;

/* Every word's lattice nodes (pieces only; unknown nodes are added when the
 * lattice is rebuilt from it). Pieces are only ever removed after the seeds,
 * so the nodes are found once with the trie and then only filtered. */
typedef struct {
    size_t *off;    /* [n_words + 1] */
    int32_t *piece; /* current piece id per node */
    uint32_t *pos;  /* start << 10 | length */
    int n_words, active;
} lattice_cache;

#define CACHE_MAX_NODES ((size_t)1 << 28) /* 2 GiB of nodes: beyond, lattices are rebuilt each time */
#define CACHE_MAX_WORD (1 << 21)          /* starts must fit in 22 bits */

/* The pieces being trained: piece i is keys[i] in set, score[i] its log-probability. */
typedef struct {
    train_strset set;
    double *score;
    double min_score;
    cp_trie trie;
    lattice_cache cache;
} ulm_pieces;

typedef struct {
    int *first;   /* [n + 1]: nodes starting at i are first[i] .. first[i+1]-1 */
    int *start, *end; /* per node */
    int *piece;   /* per node, -1 for an unknown character */
    double *score;
    double *alpha, *beta; /* [n + 1] */
    int *back;    /* [n + 1] Viterbi back-pointer (node index) */
    int n_nodes, node_cap, pos_cap;
} ulm_lattice;

void ulm_pieces_free(ulm_pieces *p);
/* Builds the trie (and min_score) over the current pieces. */
qkv_status ulm_pieces_index(ulm_pieces *p);
/* Replaces the pieces by keep[0..n) (indices into the current ones) with the
 * given scores; renumbers the lattice cache and rebuilds the trie. */
qkv_status ulm_pieces_select(ulm_pieces *p, const int *keep, const double *score, int n);

void ulm_lattice_free(ulm_lattice *l);
/* Every piece occurring in w[0..n), plus an unknown node for a character no
 * single-character piece covers. skip_piece (or -1) is left out when it
 * spans the whole of w (pruning's "second best"). Returns 0 when out of memory. */
int ulm_lattice_build(ulm_lattice *l, const ulm_pieces *p, const uint32_t *w, int n, int skip_piece);
/* Forward-backward: adds freq x marginal of every node to expected[piece] in
 * fixed point (EXPECTED_ONE = 1); returns log Z. */
#define EXPECTED_ONE 1073741824.0 /* 2^30 leaves room for 8e9 occurrences */
double ulm_lattice_marginal(ulm_lattice *l, int n, double freq, int64_t *expected);
/* Viterbi: fills l->back; returns the best path's score (-inf if none). */
double ulm_lattice_viterbi(ulm_lattice *l, int n);

/* Finds every word's nodes once (inactive cache when it would be too big). */
qkv_status ulm_cache_build(ulm_pieces *p, const train_corpus *c);
/* Word i's lattice, from the cache when there is one. Returns 0 when out of memory. */
int ulm_word_lattice(ulm_lattice *l, const ulm_pieces *p, const train_words *w, int i);

#endif
