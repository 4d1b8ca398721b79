/* A fake tokenizer for the data tests (test_parallel, test_batcher): one id
 * per whitespace-separated number, read from text held in memory. */
#ifndef QKV_TESTS_NUMBERS_TEXT_H
#define QKV_TESTS_NUMBERS_TEXT_H

#include <string.h>

#include "base/status.h"
#include "data/parallel.h"

#define EOS 2
#define BOS 0
#define PAD 1

/* "12 7 40" -> {12, 7, 40}; the word "FAIL" fails; a non-number word -> 3. */
static inline int encode_numbers(void *ctx, const char *text, size_t len, int *ids, int max_ids)
{
    (void)ctx;
    int n = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && (text[i] == ' ' || text[i] == '\t'))
            i++;
        if (i == len)
            break;
        size_t j = i;
        int v = 0, numeric = 1;
        while (j < len && text[j] != ' ' && text[j] != '\t') {
            numeric &= text[j] >= '0' && text[j] <= '9';
            v = v * 10 + (text[j] - '0');
            j++;
        }
        if (j - i == 4 && !memcmp(text + i, "FAIL", 4))
            return qkv_fail(QKV_ERR_FORMAT, "fake encoder: asked to fail"), -1;
        if (n < max_ids)
            ids[n] = numeric ? v : 3;
        n++;
        i = j;
    }
    return n;
}


static inline qkv_parallel_options numbers_options(int max_len)
{
    qkv_parallel_options o = qkv_parallel_default_options();
    o.encode_src = o.encode_tgt = encode_numbers;
    o.src_eos = o.tgt_eos = EOS;
    o.tgt_bos = BOS;
    o.max_len = max_len;
    return o;
}

static inline qkv_status read_str(qkv_parallel *c, const char *src, const char *tgt, const qkv_parallel_options *o,
                                  qkv_parallel_stats *st)
{
    return qkv_parallel_read_text(c, src, strlen(src), "src.txt", tgt, strlen(tgt), "tgt.txt", o, st);
}

#endif
