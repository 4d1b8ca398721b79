#include "text/spm_trie.h"

#include <stdlib.h>
#include <string.h>

#include "base/status.h"

void spm_trie_init(spm_trie *t)
{
    memset(t, 0, sizeof *t);
    for (int i = 0; i < 256; i++)
        t->root[i] = -1;
    t->n_nodes = 1;
}

void spm_trie_free(spm_trie *t)
{
    free(t->keys);
    free(t->child);
    free(t->value);
    memset(t, 0, sizeof *t);
}

static qkv_status grow_edges(spm_trie *t)
{
    size_t nc = t->cap ? t->cap * 2 : 1024;
    uint64_t *keys = calloc(nc, sizeof *keys);
    int32_t *child = malloc(nc * sizeof *child);
    if (!keys || !child) {
        free(keys);
        free(child);
        return qkv_fail(QKV_ERR_NOMEM, "out of memory building a piece trie");
    }
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->keys[i])
            continue;
        size_t h = (size_t)((t->keys[i] * 0x9E3779B97F4A7C15ull) >> 32) & (nc - 1);
        while (keys[h])
            h = (h + 1) & (nc - 1);
        keys[h] = t->keys[i];
        child[h] = t->child[i];
    }
    free(t->keys);
    free(t->child);
    t->keys = keys;
    t->child = child;
    t->cap = nc;
    return QKV_OK;
}

static qkv_status new_node(spm_trie *t, int *id)
{
    if (t->n_nodes >= t->value_cap) {
        int nc = t->value_cap ? t->value_cap * 2 : 1024;
        int32_t *v = realloc(t->value, (size_t)nc * sizeof *v);
        if (!v)
            return qkv_fail(QKV_ERR_NOMEM, "out of memory building a piece trie");
        if (!t->value_cap)
            v[0] = -1;
        t->value = v;
        t->value_cap = nc;
    }
    *id = t->n_nodes++;
    t->value[*id] = -1;
    return QKV_OK;
}

qkv_status spm_trie_add(spm_trie *t, const char *s, size_t len, int value, int *added)
{
    if (!t->value_cap) {
        int dummy;
        t->n_nodes = 0;
        QKV_TRY(new_node(t, &dummy)); /* the root */
    }
    int node = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int next = spm_trie_child(t, node, c);
        if (next < 0) {
            QKV_TRY(new_node(t, &next));
            if (node == 0) {
                t->root[c] = next;
            } else {
                if ((t->n_edges + 1) * 2 > t->cap)
                    QKV_TRY(grow_edges(t));
                uint64_t key = ((uint64_t)node << 8 | c) + 1;
                size_t h = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & (t->cap - 1);
                while (t->keys[h])
                    h = (h + 1) & (t->cap - 1);
                t->keys[h] = key;
                t->child[h] = next;
                t->n_edges++;
            }
        }
        node = next;
    }
    *added = t->value[node] < 0;
    if (*added)
        t->value[node] = value;
    return QKV_OK;
}

int spm_trie_find(const spm_trie *t, const char *s, size_t len)
{
    if (!t->value)
        return -1;
    int node = 0;
    for (size_t i = 0; i < len && node >= 0; i++)
        node = spm_trie_child(t, node, (unsigned char)s[i]);
    return node >= 0 ? t->value[node] : -1;
}

size_t spm_trie_longest_prefix(const spm_trie *t, const char *s, size_t len)
{
    if (!t->value)
        return 0;
    size_t best = 0;
    int node = 0;
    for (size_t i = 0; i < len; i++) {
        node = spm_trie_child(t, node, (unsigned char)s[i]);
        if (node < 0)
            break;
        if (t->value[node] >= 0)
            best = i + 1;
    }
    return best;
}
