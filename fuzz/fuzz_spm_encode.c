/* libFuzzer target: encoding arbitrary bytes with fixed models (unigram with
 * nmt_nfkc; BPE with byte fallback and user-defined symbols; unigram with
 * custom rules and a denormalizer; char with byte fallback), then decoding
 * the ids. Checks that the pieces' surfaces tile the normalized text and
 * that decoding succeeds. Models are read from $QKV_FUZZ_MODELS (a
 * directory; default tests/golden/spm). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qkv.h"
#include "text/spm.h"

#define N_MODELS 4
static qkv_vocab *models[N_MODELS];

static void load_models(void)
{
    const char *dir = getenv("QKV_FUZZ_MODELS");
    const char *names[N_MODELS] = {"uni_1000", "bpe_1000_user", "uni_rules", "char_bytes"};
    char path[1024];
    for (int i = 0; i < N_MODELS; i++) {
        snprintf(path, sizeof path, "%s/%s.model", dir ? dir : "tests/golden/spm", names[i]);
        if (qkv_vocab_load(path, &models[i]) != QKV_OK) {
            fprintf(stderr, "fuzz_spm_encode: %s\n", qkv_last_error());
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!models[0])
        load_models();
    spm_state st = {0};
    for (int k = 0; k < N_MODELS; k++) {
        const qkv_vocab *v = models[k];
        if (spm_encode(v, &st, (const char *)data, size) != QKV_OK)
            abort(); /* encoding valid or invalid text never fails */
        /* the pieces' surfaces tile the normalized text */
        size_t at = 0;
        for (size_t i = 0; i < st.n_tok; i++) {
            if (st.tok[i].off != at)
                abort();
            at += st.tok[i].len;
        }
        if (at != st.normalized.len)
            abort();
        int *ids = malloc((st.n_tok + 1) * sizeof *ids);
        for (size_t i = 0; i < st.n_tok; i++)
            ids[i] = st.tok[i].id;
        char *text;
        size_t len;
        if (qkv_vocab_decode(v, ids, st.n_tok, &text, &len) != QKV_OK)
            abort();
        free(text);
        free(ids);
    }
    spm_state_free(&st);
    return 0;
}
