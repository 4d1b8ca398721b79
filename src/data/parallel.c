#include "data/parallel.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/status.h"

qkv_parallel_options qkv_parallel_default_options(void)
{
    qkv_parallel_options o = {
        .encode_src = NULL,
        .src_ctx = NULL,
        .encode_tgt = NULL,
        .tgt_ctx = NULL,
        .src_eos = 2,
        .tgt_bos = 0,
        .tgt_eos = 2,
        .max_len = 0,
        .src_vocab_size = 0,
        .tgt_vocab_size = 0,
    };
    return o;
}

qkv_status qkv_parallel_validate(const qkv_parallel_options *o)
{
    if (!o->encode_src || !o->encode_tgt)
        return qkv_fail(QKV_ERR_CONFIG, "parallel corpus: field '%s' is NULL; expected an encoder callback",
                        !o->encode_src ? "encode_src" : "encode_tgt");
    if (o->tgt_bos < 0)
        return qkv_fail(QKV_ERR_CONFIG, "parallel corpus: field 'tgt_bos' is %d; expected an id >= 0", o->tgt_bos);
    if (o->tgt_eos < 0)
        return qkv_fail(QKV_ERR_CONFIG, "parallel corpus: field 'tgt_eos' is %d; expected an id >= 0", o->tgt_eos);
    if (o->src_vocab_size < 0 || o->tgt_vocab_size < 0)
        return qkv_fail(QKV_ERR_CONFIG, "parallel corpus: field '%s' is %d; expected >= 0 (0: unchecked)",
                        o->src_vocab_size < 0 ? "src_vocab_size" : "tgt_vocab_size",
                        o->src_vocab_size < 0 ? o->src_vocab_size : o->tgt_vocab_size);
    if (o->src_vocab_size > 0 && o->src_eos >= o->src_vocab_size)
        return qkv_fail(QKV_ERR_CONFIG, "parallel corpus: field 'src_eos' is %d; expected an id below src_vocab_size = %d",
                        o->src_eos, o->src_vocab_size);
    if (o->tgt_vocab_size > 0 && (o->tgt_bos >= o->tgt_vocab_size || o->tgt_eos >= o->tgt_vocab_size))
        return qkv_fail(QKV_ERR_CONFIG, "parallel corpus: field '%s' is %d; expected an id below tgt_vocab_size = %d",
                        o->tgt_bos >= o->tgt_vocab_size ? "tgt_bos" : "tgt_eos",
                        o->tgt_bos >= o->tgt_vocab_size ? o->tgt_bos : o->tgt_eos, o->tgt_vocab_size);
    /* The shortest pair has one id and one special per side. */
    if (o->max_len < 0 || o->max_len == 1)
        return qkv_fail(QKV_ERR_CONFIG, "parallel corpus: field 'max_len' is %d; expected 0 (no limit) or >= 2",
                        o->max_len);
    return QKV_OK;
}

/* Well-formed UTF-8 as Unicode defines it: no overlong forms, no surrogates,
 * nothing above U+10FFFF (the table of RFC 3629, section 4). */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        int k;
        unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (c >= 0xC2 && c <= 0xDF)
            k = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            k = 2;
            if (c == 0xE0)
                lo = 0xA0;
            if (c == 0xED)
                hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 3;
            if (c == 0xF0)
                lo = 0x90;
            if (c == 0xF4)
                hi = 0x8F;
        } else
            return 0;
        if (n - i <= (size_t)k)
            return 0;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (int j = 2; j <= k; j++)
            if ((s[i + j] & 0xC0) != 0x80)
                return 0;
        i += (size_t)k + 1;
    }
    return 1;
}

/* Lines from a FILE (streamed, so a corpus larger than memory twice over
 * still reads) or from a buffer. */
typedef struct {
    const char *name;
    FILE *fp;
    char *buf;
    size_t cap;
    const char *p, *end; /* buffer mode */
} line_reader;

/* 1: a line in (*line, *len) without its "\n" or "\r\n"; 0: end of input;
 * < 0: a read error (message recorded). */
static int next_line(line_reader *r, const char **line, size_t *len)
{
    size_t n;
    if (r->fp) {
        errno = 0;
        ssize_t got = getline(&r->buf, &r->cap, r->fp);
        if (got < 0) {
            if (ferror(r->fp) || errno == ENOMEM)
                return qkv_fail(QKV_ERR_IO, "%s: cannot read: %s", r->name, strerror(errno ? errno : EIO)), -1;
            return 0;
        }
        *line = r->buf;
        n = (size_t)got;
    } else {
        if (r->p >= r->end)
            return 0;
        const char *nl = memchr(r->p, '\n', (size_t)(r->end - r->p));
        *line = r->p;
        n = nl ? (size_t)(nl - r->p) + 1 : (size_t)(r->end - r->p);
        r->p += n;
    }
    if (n && (*line)[n - 1] == '\n')
        n--;
    if (n && (*line)[n - 1] == '\r')
        n--;
    *len = n;
    return 1;
}

/* Lines as next_line() would return them (a last line without "\n"
 * counts), without decoding anything; -1 when the input cannot be counted
 * without consuming it (a pipe), or on a read error (message recorded). */
static int64_t count_lines(line_reader *r)
{
    int64_t n = 0;
    char last = '\n';
    if (!r->fp) {
        for (const char *p = r->p; p < r->end; n++) {
            const char *nl = memchr(p, '\n', (size_t)(r->end - p));
            p = nl ? nl + 1 : r->end;
        }
        return n;
    }
    struct stat st;
    if (fstat(fileno(r->fp), &st) != 0 || !S_ISREG(st.st_mode))
        return -1;
    char buf[1 << 16];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, r->fp)) > 0) {
        for (const char *p = buf, *end = buf + got; (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++)
            n++;
        last = buf[got - 1];
    }
    if (ferror(r->fp)) {
        qkv_fail(QKV_ERR_IO, "%s: cannot read: %s", r->name, strerror(errno ? errno : EIO));
        return -2;
    }
    rewind(r->fp);
    return n + (last != '\n');
}

/* The error for line counts that differ. */
static qkv_status count_mismatch(const line_reader *rs, int64_t ns, const line_reader *rt, int64_t nt)
{
    return qkv_fail(QKV_ERR_FORMAT,
                    "parallel corpus: %s has %lld lines but %s has %lld; expected the same number "
                    "(one sentence per line, aligned)",
                    rs->name, (long long)ns, rt->name, (long long)nt);
}

static qkv_status reserve_ids(qkv_parallel *c, size_t extra)
{
    if (c->cap_ids - c->n_ids >= extra)
        return QKV_OK;
    size_t cap = c->cap_ids ? c->cap_ids : 4096;
    while (cap - c->n_ids < extra) {
        if (cap > SIZE_MAX / 2 / sizeof(int))
            return qkv_fail(QKV_ERR_NOMEM, "parallel corpus: more ids than memory can index");
        cap *= 2;
    }
    int *ids = realloc(c->ids, cap * sizeof *ids);
    if (!ids)
        return qkv_fail(QKV_ERR_NOMEM, "parallel corpus: cannot grow the id buffer to %zu ids", cap);
    c->ids = ids;
    c->cap_ids = cap;
    return QKV_OK;
}

static qkv_status push_pair(qkv_parallel *c, qkv_pair p)
{
    if (c->n_pairs == c->cap_pairs) {
        int64_t cap = c->cap_pairs ? 2 * c->cap_pairs : 1024;
        qkv_pair *pairs = realloc(c->pairs, (size_t)cap * sizeof *pairs);
        if (!pairs)
            return qkv_fail(QKV_ERR_NOMEM, "parallel corpus: cannot grow the pair table to %lld pairs", (long long)cap);
        c->pairs = pairs;
        c->cap_pairs = cap;
    }
    c->pairs[c->n_pairs++] = p;
    return QKV_OK;
}

/* Encodes one side at c->ids + c->n_ids + at. limit: most bare ids kept
 * (INT_MAX: no limit). Sets *n to the encoder's count (which may exceed
 * limit; then the ids are not all written). */
static qkv_status encode_side(qkv_parallel *c, size_t at, qkv_encode_fn enc, void *ctx, const char *text, size_t len,
                              int limit, int vocab, const char *name, int64_t line, int *n)
{
    /* A first guess for an unlimited side: SentencePiece gives at most about
     * one id per byte (byte fallback), plus the leading "▁". */
    size_t room = limit < INT_MAX ? (size_t)limit : (len < (size_t)INT_MAX - 16 ? len + 16 : (size_t)INT_MAX);
    for (;;) {
        QKV_TRY(reserve_ids(c, at + room));
        int got = enc(ctx, text, len, c->ids + c->n_ids + at, (int)room);
        if (got < 0)
            return qkv_fail_context(QKV_ERR_FORMAT, "%s:%lld: the encoder failed", name, (long long)line);
        *n = got;
        if ((size_t)got <= room || limit < INT_MAX)
            break;
        /* Too small a buffer for an unlimited side: again with room for the
         * count, or twice the room for an encoder that stopped counting early. */
        room = (size_t)got > 2 * room ? (size_t)got : 2 * room;
        if (room > INT_MAX)
            room = INT_MAX;
    }
    if (vocab > 0 && *n <= limit) {
        const int *ids = c->ids + c->n_ids + at;
        for (int i = 0; i < *n; i++)
            if (ids[i] < 0 || ids[i] >= vocab)
                return qkv_fail(QKV_ERR_FORMAT, "%s:%lld: the encoder gave id %d at position %d; expected [0, %d)", name,
                                (long long)line, ids[i], i, vocab);
    }
    return QKV_OK;
}

static qkv_status read_pairs(qkv_parallel *c, line_reader *rs, line_reader *rt, const qkv_parallel_options *o,
                             qkv_parallel_stats *st)
{
    int src_extra = o->src_eos >= 0, src_limit = INT_MAX, tgt_limit = INT_MAX;
    if (o->max_len > 0) {
        src_limit = o->max_len - src_extra;
        tgt_limit = o->max_len - 1;
    }
    for (;;) {
        const char *ls, *lt;
        size_t ns, nt;
        int gs = next_line(rs, &ls, &ns);
        if (gs < 0)
            return QKV_ERR_IO;
        int gt = next_line(rt, &lt, &nt);
        if (gt < 0)
            return QKV_ERR_IO;
        if (!gs || !gt) {
            if (gs || gt) {
                /* Count the rest of the longer file so that the message gives both totals. */
                line_reader *longer = gs ? rs : rt;
                int64_t more = 1;
                const char *l;
                size_t n;
                int g;
                while ((g = next_line(longer, &l, &n)) > 0)
                    more++;
                if (g < 0)
                    return QKV_ERR_IO;
                return count_mismatch(rs, st->lines + (gs ? more : 0), rt, st->lines + (gt ? more : 0));
            }
            return QKV_OK;
        }
        int64_t line = ++st->lines;
        st->invalid_utf8 += !utf8_valid((const unsigned char *)ls, ns);
        st->invalid_utf8 += !utf8_valid((const unsigned char *)lt, nt);
        if (!ns || !nt) {
            st->empty++;
            continue;
        }
        int xs, xt;
        QKV_TRY(encode_side(c, 0, o->encode_src, o->src_ctx, ls, ns, src_limit, o->src_vocab_size, rs->name, line, &xs));
        size_t src_room = (size_t)(xs <= src_limit ? xs : 0);
        QKV_TRY(encode_side(c, src_room, o->encode_tgt, o->tgt_ctx, lt, nt, tgt_limit, o->tgt_vocab_size, rt->name, line,
                            &xt));
        if (!xs || !xt) {
            st->empty++;
            continue;
        }
        if (xs > src_limit || xt > tgt_limit) {
            st->too_long++;
            continue;
        }
        QKV_TRY(push_pair(c, (qkv_pair){.off = c->n_ids, .src_len = xs, .tgt_len = xt, .line = line}));
        c->n_ids += (size_t)xs + (size_t)xt;
        st->kept++;
        st->src_tokens += xs;
        st->tgt_tokens += xt;
    }
}

static qkv_status read_lines(qkv_parallel *out, line_reader *rs, line_reader *rt, const qkv_parallel_options *o,
                             qkv_parallel_stats *stats)
{
    qkv_parallel_stats st = {0};
    /* Counting first costs a pass of memchr but reports different line
     * counts before any encoding (which is the slow part), and sizes the pair
     * table once. The check at the end of read_pairs still guards inputs
     * that cannot be counted (pipes) or that change while being read. */
    int64_t ns = count_lines(rs), nt = ns >= 0 ? count_lines(rt) : -1;
    qkv_status s = QKV_OK;
    if (ns == -2 || nt == -2)
        s = QKV_ERR_IO;
    else if (ns >= 0 && nt >= 0 && ns != nt)
        s = count_mismatch(rs, ns, rt, nt);
    else if (ns > 0) {
        out->pairs = malloc((size_t)ns * sizeof *out->pairs);
        if (!out->pairs)
            s = qkv_fail(QKV_ERR_NOMEM, "parallel corpus: no memory for %lld sentence pairs", (long long)ns);
        out->cap_pairs = out->pairs ? ns : 0;
    }
    if (s == QKV_OK)
        s = read_pairs(out, rs, rt, o, &st);
    if (s != QKV_OK)
        out->n_pairs = 0, out->n_ids = 0; /* a partial corpus is never handed on */
    else if (out->cap_ids > out->n_ids + 4096) {
        int *ids = realloc(out->ids, (out->n_ids ? out->n_ids : 1) * sizeof *ids); /* give back the doubling slack */
        if (ids)
            out->ids = ids, out->cap_ids = out->n_ids ? out->n_ids : 1;
    }
    if (stats)
        *stats = st;
    return s;
}

static void init_corpus(qkv_parallel *out, const qkv_parallel_options *o)
{
    memset(out, 0, sizeof *out);
    out->src_eos = o->src_eos < 0 ? -1 : o->src_eos;
    out->tgt_bos = o->tgt_bos;
    out->tgt_eos = o->tgt_eos;
    out->max_len = o->max_len;
}

qkv_status qkv_parallel_read(qkv_parallel *out, const char *src_path, const char *tgt_path,
                             const qkv_parallel_options *o, qkv_parallel_stats *stats)
{
    init_corpus(out, o);
    if (stats)
        memset(stats, 0, sizeof *stats);
    QKV_TRY(qkv_parallel_validate(o));
    line_reader rs = {.name = src_path}, rt = {.name = tgt_path};
    rs.fp = fopen(src_path, "rb");
    if (!rs.fp)
        return qkv_fail(QKV_ERR_IO, "%s: cannot open the source file: %s", src_path, strerror(errno));
    rt.fp = fopen(tgt_path, "rb");
    if (!rt.fp) {
        qkv_status s = qkv_fail(QKV_ERR_IO, "%s: cannot open the target file: %s", tgt_path, strerror(errno));
        fclose(rs.fp);
        return s;
    }
    qkv_status s = read_lines(out, &rs, &rt, o, stats);
    free(rs.buf);
    free(rt.buf);
    fclose(rs.fp);
    fclose(rt.fp);
    return s;
}

qkv_status qkv_parallel_read_text(qkv_parallel *out, const char *src, size_t src_len, const char *src_name,
                                  const char *tgt, size_t tgt_len, const char *tgt_name,
                                  const qkv_parallel_options *o, qkv_parallel_stats *stats)
{
    init_corpus(out, o);
    if (stats)
        memset(stats, 0, sizeof *stats);
    QKV_TRY(qkv_parallel_validate(o));
    line_reader rs = {.name = src_name, .p = src, .end = src_len ? src + src_len : src};
    line_reader rt = {.name = tgt_name, .p = tgt, .end = tgt_len ? tgt + tgt_len : tgt};
    return read_lines(out, &rs, &rt, o, stats);
}

void qkv_parallel_free(qkv_parallel *c)
{
    if (!c)
        return;
    free(c->ids);
    free(c->pairs);
    memset(c, 0, sizeof *c);
}
