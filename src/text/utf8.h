/* UTF-8 decoding with sentencepiece's rules for malformed input.
 *
 * A byte that does not start a valid sequence (overlong forms, surrogates,
 * code points above U+10FFFF, truncated sequences, stray continuation bytes)
 * decodes as U+FFFD of length 1, so the next byte is tried afresh. This is
 * what sentencepiece's string_util::DecodeUTF8 does, and encoding matches it
 * byte for byte. A literal U+FFFD (EF BF BD) is valid and of length 3. */
#ifndef QKV_TEXT_UTF8_H
#define QKV_TEXT_UTF8_H

#include <stddef.h>
#include <stdint.h>

#define UTF8_REPLACEMENT 0xFFFDu

/* Decodes the character at s[0..len) (len >= 1). Sets *n to the bytes it
 * spans (1..4) and *valid to 0 when the byte was malformed (then the result
 * is U+FFFD and *n is 1). */
uint32_t utf8_decode(const char *s, size_t len, size_t *n, int *valid);

/* Length from the lead byte alone (sentencepiece's OneCharLen): 1 for ASCII
 * and stray continuation bytes, 2, 3 or 4 otherwise. Does not validate. */
static inline size_t utf8_lead_len(unsigned char c)
{
    return (size_t)"\1\1\1\1\1\1\1\1\1\1\1\1\2\2\3\4"[c >> 4];
}

/* Writes the encoding of cp (<= 0x10FFFF) to out; returns its length. */
size_t utf8_encode(char out[4], uint32_t cp);

/* Number of malformed bytes in s[0..len), each of which sentencepiece
 * replaces with U+FFFD. */
size_t utf8_count_invalid(const char *s, size_t len);

#endif
