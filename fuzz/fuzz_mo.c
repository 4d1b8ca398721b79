/* libFuzzer target for the gettext .mo reader (scripts/fuzz-formats builds
 * and runs it). Any input must give a clean status; every string of an
 * accepted catalog must be readable to its NUL. */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "formats/mo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mo_file *f;
    qkv_status s = mo_open_memory(&f, data, size, "fuzz");
    if (s != QKV_OK) {
        assert(f == NULL);
        assert(s == QKV_ERR_FORMAT || s == QKV_ERR_UNSUPPORTED || s == QKV_ERR_NOMEM);
        return 0;
    }
    size_t total = 0;
    for (int i = 0; i < mo_count(f); i++) {
        const mo_entry *e = mo_get(f, i);
        total += strlen(e->msgid);
        if (e->context)
            total += strlen(e->context);
        if (e->msgid_plural)
            total += strlen(e->msgid_plural);
        assert(e->n_msgstr >= 1);
        for (int k = 0; k < e->n_msgstr; k++)
            total += strlen(e->msgstr[k]);
    }
    char buf[64];
    mo_header_field(f, "Plural-Forms", buf, sizeof buf);
    if (mo_header(f))
        total += strlen(mo_header(f));
    total += strlen(mo_charset(f));
    (void)total;
    mo_close(f);
    return 0;
}
