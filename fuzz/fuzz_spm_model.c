/* libFuzzer target: the SentencePiece .model reader and vocabulary checks on
 * arbitrary bytes. Whatever loads must also encode and decode a fixed line.
 * Built and run by scripts/fuzz-spm. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qkv.h"
#include "text/spm_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    spm_model m;
    if (spm_model_read_memory(&m, data, size, "fuzz") == QKV_OK) {
        uint8_t *out;
        size_t n;
        if (spm_model_serialize(&m, &out, &n) == QKV_OK)
            free(out);
        spm_model_free(&m);
    }
    qkv_vocab *v;
    if (qkv_vocab_load_memory(data, size, &v) != QKV_OK)
        return 0;
    static const char line[] = "  Hello,  w\xC3\xB6rld! \xE4\xBD\xA0\xE5\xA5\xBD \xEF\xAC\x81 \xFF\xE2\x91\xA0 <s> x ";
    int *ids;
    size_t n;
    if (qkv_vocab_encode(v, line, sizeof line - 1, &ids, &n, NULL) == QKV_OK) {
        char *text;
        size_t len;
        if (qkv_vocab_decode(v, ids, n, &text, &len) == QKV_OK)
            free(text);
        free(ids);
    }
    qkv_vocab_free(v);
    return 0;
}
