/* UTF-8 and the few Unicode operations sacreBLEU's Python performs. */
#include "eval/unicode.h"

#include <stdlib.h>

#include "base/status.h"

qkv_status eval_u32_push(eval_u32buf *b, uint32_t c)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 64;
        uint32_t *p = realloc(b->cp, cap * sizeof *p);
        if (!p)
            return qkv_fail(QKV_ERR_NOMEM, "out of memory (%zu code points)", cap);
        b->cp = p;
        b->cap = cap;
    }
    b->cp[b->n++] = c;
    return QKV_OK;
}

void eval_u32_free(eval_u32buf *b)
{
    free(b->cp);
    b->cp = NULL;
    b->n = b->cap = 0;
}

qkv_status eval_utf8_decode(eval_u32buf *out, const char *s, const char *what)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (p[i]) {
        uint32_t c = p[i];
        int len;
        uint32_t min;
        if (c < 0x80) {
            len = 1, min = 0;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, min = 0x80, c &= 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, min = 0x800, c &= 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, min = 0x10000, c &= 0x07;
        } else {
            return qkv_fail(QKV_ERR_FORMAT, "%s: invalid UTF-8 at byte %zu (0x%02X)", what, i, p[i]);
        }
        for (int k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return qkv_fail(QKV_ERR_FORMAT, "%s: invalid UTF-8 at byte %zu (truncated sequence)", what, i);
            c = (c << 6) | (p[i + k] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c < 0xE000))
            return qkv_fail(QKV_ERR_FORMAT, "%s: invalid UTF-8 at byte %zu (overlong, surrogate or out of range)",
                            what, i);
        QKV_TRY(eval_u32_push(out, c));
        i += len;
    }
    return QKV_OK;
}

qkv_status eval_utf8_encode(char **out, const uint32_t *cp, size_t n)
{
    char *s = malloc(4 * n + 1), *q = s;
    if (!s)
        return qkv_fail(QKV_ERR_NOMEM, "out of memory (%zu code points)", n);
    for (size_t i = 0; i < n; i++) {
        uint32_t c = cp[i];
        if (c < 0x80) {
            *q++ = (char)c;
        } else if (c < 0x800) {
            *q++ = (char)(0xC0 | (c >> 6));
            *q++ = (char)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            *q++ = (char)(0xE0 | (c >> 12));
            *q++ = (char)(0x80 | ((c >> 6) & 0x3F));
            *q++ = (char)(0x80 | (c & 0x3F));
        } else {
            *q++ = (char)(0xF0 | (c >> 18));
            *q++ = (char)(0x80 | ((c >> 12) & 0x3F));
            *q++ = (char)(0x80 | ((c >> 6) & 0x3F));
            *q++ = (char)(0x80 | (c & 0x3F));
        }
    }
    *q = 0;
    *out = s;
    return QKV_OK;
}

int eval_uc_in(const eval_uc_range *t, int count, uint32_t c)
{
    int lo = 0, hi = count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c < t[mid].first)
            hi = mid - 1;
        else if (c > t[mid].last)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

int eval_uc_is_space(uint32_t c)
{
    if (c < 0x80)
        return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
    return eval_uc_in(eval_uc_space, eval_uc_space_count, c);
}

static uint32_t lower1(uint32_t c)
{
    if (c < 0x80)
        return c >= 'A' && c <= 'Z' ? c + 32 : c;
    int lo = 0, hi = eval_uc_lower_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const eval_uc_lower_run *r = &eval_uc_lower[mid];
        if (c < r->first)
            hi = mid - 1;
        else if (c > r->last)
            lo = mid + 1;
        else
            return (c - r->first) % (uint32_t)r->stride == 0 ? (uint32_t)((int64_t)c + r->delta) : c;
    }
    return c;
}

/* Python's Final_Sigma: capital sigma lowers to the final form when a cased
 * letter precedes it and none follows, case-ignorable characters skipped. */
static int final_sigma(const uint32_t *cp, size_t n, size_t i)
{
    size_t j = i;
    while (j > 0 && eval_uc_in(eval_uc_sigma_ign, eval_uc_sigma_ign_count, cp[j - 1]))
        j--;
    if (j == 0 || !eval_uc_in(eval_uc_sigma_cased, eval_uc_sigma_cased_count, cp[j - 1]))
        return 0;
    j = i + 1;
    while (j < n && eval_uc_in(eval_uc_sigma_ign, eval_uc_sigma_ign_count, cp[j]))
        j++;
    return j == n || !eval_uc_in(eval_uc_sigma_cased, eval_uc_sigma_cased_count, cp[j]);
}

qkv_status eval_lower(eval_u32buf *out, const uint32_t *cp, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t c = cp[i];
        if (c == 0x3A3) {
            QKV_TRY(eval_u32_push(out, final_sigma(cp, n, i) ? 0x3C2 : 0x3C3));
            continue;
        }
        int special = 0;
        for (int k = 0; k < eval_uc_lower_special_count && !special; k++) {
            if (eval_uc_lower_special[k].cp != c)
                continue;
            special = 1;
            for (int m = 0; m < 3 && eval_uc_lower_special[k].lower[m]; m++)
                QKV_TRY(eval_u32_push(out, eval_uc_lower_special[k].lower[m]));
        }
        if (!special)
            QKV_TRY(eval_u32_push(out, lower1(c)));
    }
    return QKV_OK;
}
