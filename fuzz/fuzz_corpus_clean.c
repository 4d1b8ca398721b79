/* libFuzzer target for the corpus cleaning rules (scripts/fuzz-formats):
 * the input is "source \0 translation"; cleaning must never grow a side,
 * drop a '%' (placeholders) or turn valid UTF-8 invalid. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/corpus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int percents(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '%';
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 2);
    memcpy(buf, data, size);
    buf[size] = buf[size + 1] = '\0';
    char *src = buf, *tgt = buf + strlen(buf) + 1; /* tgt is "" when there is no NUL */
    size_t ls = strlen(src), lt = strlen(tgt);
    int ps = percents(src), pt = percents(tgt);
    int us = corpus_utf8_valid(src, ls), ut = corpus_utf8_valid(tgt, lt);
    corpus_strip_accelerators(src, tgt);
    corpus_join_lines(src);
    corpus_join_lines(tgt);
    assert(strlen(src) <= ls && strlen(tgt) <= lt);
    assert(percents(src) == ps && percents(tgt) == pt);
    assert(!us || corpus_utf8_valid(src, strlen(src)));
    assert(!ut || corpus_utf8_valid(tgt, strlen(tgt)));
    (void)corpus_utf8_chars(src);
    (void)corpus_fnv1a64(tgt);
    free(buf);
    return 0;
}
