/* libFuzzer target for the safetensors reader (scripts/fuzz-formats builds
 * and runs it). Any input must give a clean status; an accepted file must
 * describe tensors that lie inside it and read back without faults. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_file *f;
    qkv_status s = st_open_memory(&f, data, size, "fuzz");
    if (s != QKV_OK) {
        assert(f == NULL);
        assert(s == QKV_ERR_FORMAT || s == QKV_ERR_UNSUPPORTED || s == QKV_ERR_NOMEM);
        return 0;
    }
    size_t total = 0;
    for (int i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_get(f, i);
        assert(st_find(f, t->name) == t);
        assert(t->nbytes <= size);
        total += t->nbytes;
        size_t n = t->nbytes / st_dtype_size(t->dtype);
        if (n > (1u << 20))
            continue;
        float *fo = malloc((n + 1) * sizeof *fo);
        int32_t *io = malloc((n + 1) * sizeof *io);
        st_read_f32(f, t->name, fo, n);
        st_read_i32(f, t->name, io, n);
        /* touch the raw bytes: ASan checks they are inside the buffer */
        const unsigned char *p = st_data(f, t);
        unsigned sum = 0;
        for (size_t k = 0; k < t->nbytes; k++)
            sum += p[k];
        (void)sum;
        free(fo);
        free(io);
    }
    assert(total <= size);
    for (int i = 0; i < st_metadata_count(f); i++) {
        const char *k, *v;
        st_metadata_get(f, i, &k, &v);
        assert(st_metadata(f, k) != NULL && strlen(v) < size);
    }
    st_close(f);
    return 0;
}
