/* safetensors: the tensor file format of Hugging Face (reader and writer).
 *
 * Layout (all integers little-endian):
 *
 *   +--------+----------------------------------+--------------------------+
 *   | u64 N  | N bytes: UTF-8 JSON object       | data section: raw bytes  |
 *   +--------+----------------------------------+--------------------------+
 *   header = { "__metadata__": {"k": "v", ...},            (optional)
 *              "<name>": {"dtype": "F32", "shape": [2, 3],
 *                         "data_offsets": [begin, end]}, ... }
 *
 * data_offsets are relative to the start of the data section. The reader is
 * as strict as the reference Rust crate (safetensors/src/tensor.rs): the
 * tensors, sorted by offsets, must tile the data section exactly (no gap, no
 * overlap, nothing left over), each tensor's byte count must equal
 * product(shape) * dtype size, N is at most 100,000,000. On top of the
 * reference it rejects duplicate tensor names (serde would keep the last)
 * and non-whitespace after the JSON object.
 *
 * A loaded st_file is immutable: any number of threads may read from it.
 * Keep the reader (safetensors.c) and the writer (st_write) in sync. */
#ifndef QKV_FORMATS_SAFETENSORS_H
#define QKV_FORMATS_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "qkv.h"

typedef enum { ST_F32, ST_F16, ST_BF16, ST_F64, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL } st_dtype;

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER 100000000u /* as the reference's MAX_HEADER_SIZE */

typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[8];
    size_t offset; /* into the data section */
    size_t nbytes;
} st_tensor;

typedef struct st_file st_file;

/* Reads the whole file and validates it strictly. On failure *out is NULL and
 * the message (qkv_last_error) names the file and the tensor, field or byte
 * offset at fault. QKV_ERR_FORMAT for malformed files, QKV_ERR_UNSUPPORTED for
 * valid files qkv cannot represent (dtypes such as U16 or F8_E4M3, more than
 * 8 dimensions), QKV_ERR_IO / QKV_ERR_NOMEM otherwise. */
qkv_status st_open(st_file **out, const char *path);

/* As st_open, from a buffer of len bytes (copied; the caller keeps data).
 * name is used in messages only. */
qkv_status st_open_memory(st_file **out, const void *data, size_t len, const char *name);

void st_close(st_file *f); /* NULL ok */

int st_count(const st_file *f);
const st_tensor *st_get(const st_file *f, int i);             /* in file (header) order */
const st_tensor *st_find(const st_file *f, const char *name); /* NULL if absent */

/* The tensor's raw little-endian bytes (t->nbytes of them). Aligned to the
 * dtype only when the file is laid out so (the reference writer and st_write
 * with tensors of equal element size keep 8-byte alignment); use
 * st_read_f32 / st_read_i32 or memcpy when unsure. */
const void *st_data(const st_file *f, const st_tensor *t);

/* Size in bytes of one element, and the format's name for the dtype ("F32"). */
size_t st_dtype_size(st_dtype d);
const char *st_dtype_name(st_dtype d);

/* Converts F32/F16/BF16 (F64 too) to float: F16 and BF16 exactly (subnormals,
 * infinities and NaNs included), F64 rounded to nearest. Error naming the
 * tensor if it is absent, not of a float dtype, or its element count != n. */
qkv_status st_read_f32(const st_file *f, const char *name, float *out, size_t n);

/* Converts I64/I32 to int32 (I64 values must fit in int32; the error names
 * the element index); same errors as st_read_f32. */
qkv_status st_read_i32(const st_file *f, const char *name, int32_t *out, size_t n);

/* The "__metadata__" string value for key, or NULL. */
const char *st_metadata(const st_file *f, const char *key);
int st_metadata_count(const st_file *f);
/* The i-th metadata pair in header order (0 <= i < st_metadata_count). */
void st_metadata_get(const st_file *f, int i, const char **key, const char **value);

/* Writer: atomic (src/base/io.h). Tensors are laid out in the given order;
 * "__metadata__" (if n_metadata > 0) comes first in the header; the header is
 * padded with spaces to a multiple of 8 bytes as the reference does. data
 * holds product(shape) * dtype size bytes, little-endian. Names must be
 * distinct and not "__metadata__". metadata_kv: key, value, key, value... */
typedef struct {
    const char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[8];
    const void *data;
} st_write_tensor;
qkv_status st_write(const char *path, const st_write_tensor *tensors, int n, const char *const *metadata_kv,
                    int n_metadata);

/* Element conversions, exposed for tests and for other readers. */
float st_f16_to_f32(uint16_t h);
float st_bf16_to_f32(uint16_t h);
/* Round to nearest even; NaN stays NaN (quiet), overflow gives infinity. */
uint16_t st_f32_to_f16(float f);
uint16_t st_f32_to_bf16(float f);

/* Offset of the first invalid UTF-8 sequence in str (overlongs and
 * surrogates count as invalid), or len if there is none. */
size_t st_utf8_check(const void *str, size_t len);

#endif
