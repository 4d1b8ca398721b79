/* Normalization of training text through the encoder's normalizer
 * (spm_normalizer.h), with the charsmaps qkv carries (train_tables.h). */
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "text/train.h"
#include "text/train_tables.h"
#include "text/utf8.h"

qkv_status train_charsmap(const char *name, const uint8_t **data, size_t *len)
{
    if (!strcmp(name, "nmt_nfkc")) {
        *data = spm_charsmap_nmt_nfkc;
        *len = spm_charsmap_nmt_nfkc_len;
        return QKV_OK;
    }
    if (!strcmp(name, "identity")) {
        *data = NULL;
        *len = 0;
        return QKV_OK;
    }
    return qkv_fail(QKV_ERR_CONFIG, "vocab train: normalization '%s' is not known (expected nmt_nfkc or identity)",
                    name);
}

qkv_status train_normalizer_init(train_normalizer *n, const qkv_vocab_train_options *opt)
{
    memset(n, 0, sizeof *n);
    const uint8_t *map = NULL;
    size_t len = 0;
    QKV_TRY(train_charsmap(opt->normalization, &map, &len));
    /* the spec only borrows the map: the normalizer copies the trie */
    n->spec.precompiled_charsmap = (uint8_t *)map;
    n->spec.precompiled_charsmap_len = len;
    n->spec.add_dummy_prefix = 1;
    n->spec.remove_extra_whitespaces = 1;
    n->spec.escape_whitespaces = 1;
    QKV_TRY(spm_normalizer_init(&n->norm, &n->spec, 0, NULL));
    n->ready = 1;
    return QKV_OK;
}

void train_normalizer_free(train_normalizer *n)
{
    if (n->ready)
        spm_normalizer_free(&n->norm);
    memset(n, 0, sizeof *n);
}

qkv_status train_decode_utf8(const char *s, size_t len, uint32_t **out, int *out_len, int64_t *bad)
{
    uint32_t *cp = malloc((len + 1) * sizeof *cp);
    if (!cp)
        return qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory decoding %zu bytes", len);
    int n = 0;
    for (size_t i = 0; i < len;) {
        size_t used;
        int valid;
        cp[n++] = utf8_decode(s + i, len - i, &used, &valid);
        *bad += !valid;
        i += used;
    }
    *out = cp;
    *out_len = n;
    return QKV_OK;
}

qkv_status train_normalize(const train_normalizer *n, const char *s, size_t len, uint32_t **out, int *out_len,
                           int64_t *bad)
{
    spm_str str = {0};
    size_t invalid = 0;
    qkv_status st = spm_normalize(&n->norm, &str, s, len, &invalid);
    if (st == QKV_OK)
        st = train_decode_utf8(str.p ? str.p : "", str.len, out, out_len, bad);
    *bad += (int64_t)invalid;
    spm_str_free(&str);
    return st;
}
