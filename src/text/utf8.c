#include "text/utf8.h"

static int is_trail(unsigned char c) { return (c & 0xC0) == 0x80; }
static int is_scalar(uint32_t c) { return c < 0xD800 || (c >= 0xE000 && c <= 0x10FFFF); }

uint32_t utf8_decode(const char *str, size_t len, size_t *n, int *valid)
{
    const unsigned char *s = (const unsigned char *)str;
    uint32_t c;
    *valid = 1;
    if (s[0] < 0x80) {
        *n = 1;
        return s[0];
    }
    if (len >= 2 && (s[0] & 0xE0) == 0xC0) {
        c = (uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3F);
        if (is_trail(s[1]) && c >= 0x80 && is_scalar(c)) {
            *n = 2;
            return c;
        }
    } else if (len >= 3 && (s[0] & 0xF0) == 0xE0) {
        c = (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
        if (is_trail(s[1]) && is_trail(s[2]) && c >= 0x800 && is_scalar(c)) {
            *n = 3;
            return c;
        }
    } else if (len >= 4 && (s[0] & 0xF8) == 0xF0) {
        c = (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 | (uint32_t)(s[2] & 0x3F) << 6 |
            (s[3] & 0x3F);
        if (is_trail(s[1]) && is_trail(s[2]) && is_trail(s[3]) && c >= 0x10000 && is_scalar(c)) {
            *n = 4;
            return c;
        }
    }
    *n = 1;
    *valid = 0;
    return UTF8_REPLACEMENT;
}

size_t utf8_encode(char out[4], uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t utf8_count_invalid(const char *s, size_t len)
{
    size_t bad = 0, i = 0, n;
    int valid;
    while (i < len) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        utf8_decode(s + i, len - i, &n, &valid);
        bad += !valid;
        i += n;
    }
    return bad;
}
