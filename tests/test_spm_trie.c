/* The piece trie against a brute-force reference: exact lookup, longest
 * prefix, first value kept on duplicates, on random keys over a small
 * alphabet (so that keys share prefixes) including multi-byte bytes. */
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "text/spm_trie.h"

#define N_KEYS 3000

static char keys[N_KEYS][12];
static size_t key_len[N_KEYS];
static int key_val[N_KEYS];

static uint64_t rnd_state = 88172645463325252ull;
static uint32_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return (uint32_t)(rnd_state >> 16);
}

static const unsigned char alphabet[] = {'a', 'b', 'c', 0xE2, 0x96, 0x81, 0x00, 0xFF};

static void random_string(char *s, size_t *len)
{
    *len = 1 + rnd() % 10;
    for (size_t i = 0; i < *len; i++)
        s[i] = (char)alphabet[rnd() % sizeof alphabet];
}

/* reference: the value of the first key equal to s, or -1 */
static int ref_find(const char *s, size_t len, int n)
{
    for (int i = 0; i < n; i++)
        if (key_len[i] == len && !memcmp(keys[i], s, len))
            return key_val[i];
    return -1;
}

static size_t ref_longest(const char *s, size_t len, int n)
{
    size_t best = 0;
    for (int i = 0; i < n; i++)
        if (key_len[i] <= len && key_len[i] > best && !memcmp(keys[i], s, key_len[i]))
            best = key_len[i];
    return best;
}

static void test_trie_against_reference(void)
{
    spm_trie t;
    spm_trie_init(&t);
    CHECK(spm_trie_find(&t, "a", 1) == -1 && spm_trie_longest_prefix(&t, "a", 1) == 0, "empty trie finds something");
    for (int i = 0; i < N_KEYS; i++) {
        random_string(keys[i], &key_len[i]);
        key_val[i] = i;
        int added;
        int before = ref_find(keys[i], key_len[i], i);
        CHECK(spm_trie_add(&t, keys[i], key_len[i], i, &added) == QKV_OK, "add %d failed", i);
        CHECK(added == (before < 0), "key %d: added %d but reference says %s", i, added,
              before < 0 ? "new" : "duplicate");
    }
    for (int q = 0; q < 20000 && test_failures() < 5; q++) {
        char s[12];
        size_t len;
        random_string(s, &len);
        int want = ref_find(s, len, N_KEYS), got = spm_trie_find(&t, s, len);
        CHECK(got == want, "query %d: find gives %d, reference %d", q, got, want);
        size_t wl = ref_longest(s, len, N_KEYS), gl = spm_trie_longest_prefix(&t, s, len);
        CHECK(gl == wl, "query %d: longest prefix %zu, reference %zu", q, gl, wl);
    }
    spm_trie_free(&t);
}

static const test_case cases[] = {
    TEST(test_trie_against_reference),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
