/* The qkv checkpoint file: a self-describing container of named sections.
 *
 * Layout, version 1 (all integers little-endian):
 *
 *   offset 0   "QKVCKPT\0"           8-byte magic
 *          8   u32 version (1)
 *         12   u32 n_sections
 *         16   n_sections times:
 *                char tag[16]        section name, NUL-padded
 *                u64  nbytes
 *                u8   payload[nbytes]
 *        end   u64  FNV-1a 64 of every byte before it
 *
 * Sections written by qkv (keep in sync with train/ and cli/cmd_info.c):
 *   "config"     model configuration, JSON (src/model/config.c)
 *   "src_vocab"  SentencePiece .model bytes of the source side
 *   "tgt_vocab"  same for the target side (absent: shared with the source)
 *   "pad"        zero bytes before "params", so that its payload starts at a
 *                multiple of CKPT_PARAMS_ALIGN bytes: a reader that maps the
 *                file can use the parameters where they lie (model_io.c)
 *   "params"     float32 parameter buffer (qkv_model_num_params floats)
 *   "adam_m", "adam_v"  optimizer moments, same size (training checkpoints)
 *   "train"      training state, JSON: step, epoch, RNG and data position,
 *                best dev score, options needed to resume
 * Readers skip sections they do not know, so later versions can add some. */
#ifndef QKV_TRAIN_CHECKPOINT_H
#define QKV_TRAIN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "qkv.h"

#define CKPT_TAG_LEN 16
#define CKPT_PARAMS_ALIGN 4096 /* a page on x86-64 */

typedef struct {
    char tag[CKPT_TAG_LEN + 1];
    void *data; /* owned by the container when read; borrowed when writing */
    size_t nbytes;
} ckpt_section;

typedef struct {
    uint32_t version;
    ckpt_section *sections;
    int n_sections;
    void *file_data; /* whole file when read; sections point into it */
    size_t map_len;  /* file_data is a mapping of this many bytes (0: malloc'd) */
} ckpt_file;

/* Writes sections atomically (temporary file + rename). */
qkv_status ckpt_write(const char *path, const ckpt_section *sections, int n);

/* Reads and verifies magic, version, section bounds and checksum; every
 * error names the file and what was wrong (and the section tag). */
qkv_status ckpt_read(const char *path, ckpt_file *out);
/* The same from memory (data must stay alive as long as out). */
qkv_status ckpt_parse(const void *data, size_t len, const char *name, ckpt_file *out);
void ckpt_free(ckpt_file *f);
/* Copies a section's payload to dst (s->nbytes bytes), releasing a mapped
 * file's pages behind it, so that loading costs the destination's memory and
 * not the file's as well. */
void ckpt_section_copy(const ckpt_file *f, void *dst, const ckpt_section *s);
/* The same for n bytes at src inside f's data. */
void ckpt_copy(const ckpt_file *f, void *dst, const void *src, size_t n);

/* The section with that tag, or NULL. */
const ckpt_section *ckpt_find(const ckpt_file *f, const char *tag);

uint64_t ckpt_fnv1a64(const void *data, size_t len, uint64_t h);
#define CKPT_FNV_OFFSET 0xcbf29ce484222325ULL

#endif
