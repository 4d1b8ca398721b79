/* Unicode tables of the WordPiece basic tokenizer, generated from Python's
 * unicodedata by src/text/gen_wordpiece_tables.py (keep in sync with it). */
#ifndef QKV_TEXT_WORDPIECE_TABLES_H
#define QKV_TEXT_WORDPIECE_TABLES_H

#include <stdint.h>

typedef struct {
    uint32_t first, last;
} wp_uc_range;

typedef struct {
    uint32_t first, last;
    uint8_t ccc;
} wp_uc_ccc_run;

typedef struct {
    uint32_t cp;
    uint32_t d[4]; /* 0-terminated when shorter */
} wp_uc_decomp_entry;

typedef struct {
    uint32_t a, b, c; /* a + b compose to c */
} wp_uc_compose_entry;

extern const wp_uc_range wp_uc_control[], wp_uc_zs[], wp_uc_punct[], wp_uc_mn[];
extern const int wp_uc_control_count, wp_uc_zs_count, wp_uc_punct_count, wp_uc_mn_count;
extern const wp_uc_ccc_run wp_uc_ccc[];
extern const int wp_uc_ccc_count;
extern const wp_uc_decomp_entry wp_uc_decomp[];
extern const int wp_uc_decomp_count;
extern const wp_uc_compose_entry wp_uc_compose[];
extern const int wp_uc_compose_count;

#endif
