/* CC-CEDICT (CC BY-SA 4.0) as short English -> Chinese pairs: each usable
 * entry gives one pair, its first usable English gloss -> its simplified
 * headword ("love / to love / to be fond of" -> 爱: "love" -> 爱).
 *
 * Line format: TRADITIONAL SIMPLIFIED [pin1 yin1] /gloss 1/gloss 2/
 *
 * Rules, in order, each counted in cedict_report: comments skipped;
 * malformed lines skipped; headwords with anything but Han characters, or
 * longer than 4, skipped; proper nouns (pinyin starting with a capital)
 * skipped; glosses that are cross references ("variant of", "see", "CL:",
 * "abbr. for", "surname", anything with [ or |) dropped; of alternatives
 * separated by ';' the first kept; parenthesised notes removed; glosses longer than 4 words dropped; an entry without a gloss
 * left skipped; a gloss already paired (by an earlier entry) dropped. */
#ifndef QKV_DATA_CEDICT_H
#define QKV_DATA_CEDICT_H

#include "qkv.h"

typedef struct {
    long lines, comments, malformed, proper_nouns, not_han, too_long_headword;
    long reference_glosses, notes_removed, long_glosses, no_gloss_left, duplicate_glosses;
    long pairs;
} cedict_report;

/* Reads a CC-CEDICT text file (uncompressed) and calls emit(ctx, en, zh)
 * for every pair, in file order. Malformed lines are counted, not errors;
 * QKV_ERR_IO when the file cannot be read. */
qkv_status cedict_read(const char *path, cedict_report *r, void (*emit)(void *ctx, const char *en, const char *zh),
                       void *ctx);
/* The same over text in memory (NUL-terminated). */
qkv_status cedict_parse(const char *text, cedict_report *r, void (*emit)(void *ctx, const char *en, const char *zh),
                        void *ctx);

#endif
