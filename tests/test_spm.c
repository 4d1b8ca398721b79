/* SentencePiece compatibility: every fixture model (trained by sentencepiece
 * 0.1.97, scripts/golden/spm.py) encodes every test line id for id and piece
 * for piece as sentencepiece did; decoding gives sentencepiece's decoded
 * text; the .model reader/writer round-trips; malformed models and invalid
 * UTF-8 are handled. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/io.h"
#include "base/status.h"
#include "test.h"
#include "text/spm.h"
#include "text/spm_model.h"
#include "text/utf8.h"


/* A file split into lines (without the '\n'). */
typedef struct {
    char *data;
    char **line;
    size_t *len;
    int n;
} lines;

static int read_lines(lines *l, const char *name)
{
    char path[512];
    size_t size;
    memset(l, 0, sizeof *l);
    snprintf(path, sizeof path, "%s/spm/%s", test_golden_dir(), name);
    if (qkv_read_file(path, &l->data, &size) != QKV_OK) {
        CHECK(0, "%s", qkv_last_error());
        return 0;
    }
    int cap = 0;
    for (size_t i = 0; i < size;) {
        char *nl = memchr(l->data + i, '\n', size - i);
        size_t end = nl ? (size_t)(nl - l->data) : size;
        if (l->n == cap) {
            cap = cap ? 2 * cap : 64;
            l->line = realloc(l->line, cap * sizeof *l->line);
            l->len = realloc(l->len, cap * sizeof *l->len);
        }
        l->line[l->n] = l->data + i;
        l->len[l->n++] = end - i;
        l->data[end < size ? end : size] = 0;
        i = end + 1;
    }
    return 1;
}

static void free_lines(lines *l)
{
    free(l->data);
    free(l->line);
    free(l->len);
}

static qkv_vocab *load(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/spm/%s.model", test_golden_dir(), name);
    qkv_vocab *v = NULL;
    qkv_status s = qkv_vocab_load(path, &v);
    CHECK(s == QKV_OK, "loading %s: %s", path, qkv_last_error());
    return v;
}

/* Appends the ids (or pieces) of st, space-separated, to buf. */
static size_t format_tokens(char *buf, size_t cap, const qkv_vocab *v, const spm_state *st, int pieces)
{
    size_t n = 0;
    for (size_t i = 0; i < st->n_tok && n + 64 < cap; i++) {
        if (i)
            buf[n++] = ' ';
        if (pieces) {
            size_t len;
            const char *p = spm_token_piece(v, st, i, &len);
            if (n + len + 1 >= cap)
                break;
            memcpy(buf + n, p, len);
            n += len;
        } else {
            n += (size_t)snprintf(buf + n, cap - n, "%d", st->tok[i].id);
        }
    }
    buf[n] = 0;
    return n;
}

/* The test lines of a model: char and word models are checked on the short
 * lines only (their fixtures would be large). */
static const char *text_of(const char *name)
{
    return !strncmp(name, "char_", 5) || !strncmp(name, "word_", 5) || !strcmp(name, "uni_rules") ? "short.txt"
                                                                                                : "test.txt";
}

/* Index of the first space-separated token where a and b differ. */
static int first_diff_token(const char *a, const char *b)
{
    int tok = 0;
    for (; *a && *a == *b; a++, b++)
        tok += *a == ' ';
    return tok;
}

static void check_model(const char *name)
{
    char fname[256];
    lines text, ids, pieces, decoded;
    if (!read_lines(&text, text_of(name)))
        return;
    snprintf(fname, sizeof fname, "%s.ids", name);
    read_lines(&ids, fname);
    snprintf(fname, sizeof fname, "%s.pieces", name);
    read_lines(&pieces, fname);
    snprintf(fname, sizeof fname, "%s.decoded", name);
    read_lines(&decoded, fname);
    qkv_vocab *v = load(name);
    CHECK(ids.n == text.n && pieces.n == text.n && decoded.n == text.n, "%s: %d test lines, %d/%d/%d expected",
          name, text.n, ids.n, pieces.n, decoded.n);
    if (!v || ids.n != text.n || pieces.n != text.n || decoded.n != text.n)
        goto done;
    size_t cap = 1 << 20;
    char *buf = malloc(cap);
    spm_state st = {0};
    int bad = 0;
    for (int i = 0; i < text.n && bad < 5; i++) {
        qkv_status s = spm_encode(v, &st, text.line[i], text.len[i]);
        CHECK(s == QKV_OK, "%s line %d: %s", name, i + 1, qkv_last_error());
        format_tokens(buf, cap, v, &st, 0);
        if (strcmp(buf, ids.line[i])) {
            CHECK(0, "%s line %d ids differ from token %d on:\n  got  %.300s\n  want %.300s", name, i + 1,
                  first_diff_token(buf, ids.line[i]), buf, ids.line[i]);
            bad++;
        }
        format_tokens(buf, cap, v, &st, 1);
        if (strcmp(buf, pieces.line[i])) {
            CHECK(0, "%s line %d pieces differ from token %d on:\n  got  %.300s\n  want %.300s", name, i + 1,
                  first_diff_token(buf, pieces.line[i]), buf, pieces.line[i]);
            bad++;
        }
        /* decode(encode(x)) equals sentencepiece's decode of its ids */
        int *idv = malloc((st.n_tok + 1) * sizeof *idv);
        for (size_t k = 0; k < st.n_tok; k++)
            idv[k] = st.tok[k].id;
        char *out;
        size_t out_len;
        s = qkv_vocab_decode(v, idv, st.n_tok, &out, &out_len);
        CHECK(s == QKV_OK, "%s line %d decode: %s", name, i + 1, qkv_last_error());
        if (s == QKV_OK && (out_len != decoded.len[i] || memcmp(out, decoded.line[i], out_len))) {
            CHECK(0, "%s line %d decoded text differs:\n  got  '%.300s'\n  want '%.300s'", name, i + 1, out,
                  decoded.line[i]);
            bad++;
        }
        free(out);
        free(idv);
    }
    spm_state_free(&st);
    free(buf);
done:
    qkv_vocab_free(v);
    free_lines(&text);
    free_lines(&ids);
    free_lines(&pieces);
    free_lines(&decoded);
}

static void test_uni_1000(void) { check_model("uni_1000"); }
static void test_bpe_1000(void) { check_model("bpe_1000"); }
static void test_uni_1000_bytes(void) { check_model("uni_1000_bytes"); }
static void test_bpe_1000_user(void) { check_model("bpe_1000_user"); }
static void test_uni_100_cf(void) { check_model("uni_100_cf"); }
static void test_uni_200_raw(void) { check_model("uni_200_raw"); }
static void test_bpe_200_suffix(void) { check_model("bpe_200_suffix"); }
static void test_bpe_300_unused(void) { check_model("bpe_300_unused"); }
static void test_uni_300_unused(void) { check_model("uni_300_unused"); }
static void test_char_bytes(void) { check_model("char_bytes"); }
static void test_word_500(void) { check_model("word_500"); }
static void test_uni_rules(void) { check_model("uni_rules"); }


/* ---- decoding rules, special ids ---------------------------------------- */

static int from_hex(char *out, const char *hex, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        unsigned b;
        if (sscanf(hex + i, "%2x", &b) != 1)
            return -1;
        out[k++] = (char)b;
    }
    out[k] = 0;
    return (int)k;
}

static void check_cases(const char *name)
{
    char fname[256];
    lines cases, meta;
    snprintf(fname, sizeof fname, "%s.cases", name);
    if (!read_lines(&cases, fname))
        return;
    snprintf(fname, sizeof fname, "%s.meta", name);
    read_lines(&meta, fname);
    qkv_vocab *v = load(name);
    if (!v)
        goto done;
    for (int i = 0; i < cases.n; i++) {
        char *kind = cases.line[i], *toks = strchr(kind, '\t'), *hex = toks ? strchr(toks + 1, '\t') : NULL;
        CHECK(hex, "%s.cases line %d malformed", name, i + 1);
        if (!hex)
            continue;
        *toks++ = 0;
        *hex++ = 0;
        char want[1024];
        int want_len = from_hex(want, hex, strlen(hex));
        int ids[64];
        const char *pcs[64];
        size_t lens[64], n = 0;
        for (char *save = NULL, *t = strtok_r(toks, " ", &save); t && n < 64; t = strtok_r(NULL, " ", &save)) {
            if (!strcmp(kind, "id")) {
                ids[n] = atoi(t);
                pcs[n] = NULL;
            } else {
                ids[n] = qkv_vocab_piece_to_id(v, t);
                pcs[n] = t;
                lens[n] = strlen(t);
            }
            n++;
        }
        spm_str out = {0};
        qkv_status s = spm_decode(v, &out, ids, pcs, lens, n);
        CHECK(s == QKV_OK, "%s case %d: %s", name, i + 1, qkv_last_error());
        CHECK(s == QKV_OK && (int)out.len == want_len && !memcmp(out.p ? out.p : "", want, out.len),
              "%s case %d (%s decode of '%s'): got '%s', want '%s'", name, i + 1, kind, toks,
              out.p ? out.p : "", want);
        spm_str_free(&out);
    }
    int want_size = -2, want_unk = -2, want_bos = -2, want_eos = -2, want_pad = -2;
    for (int i = 0; i < meta.n; i++) {
        sscanf(meta.line[i], "size %d", &want_size);
        sscanf(meta.line[i], "unk %d", &want_unk);
        sscanf(meta.line[i], "bos %d", &want_bos);
        sscanf(meta.line[i], "eos %d", &want_eos);
        sscanf(meta.line[i], "pad %d", &want_pad);
    }
    CHECK(qkv_vocab_size(v) == want_size, "%s: size %d, want %d", name, qkv_vocab_size(v), want_size);
    CHECK(qkv_vocab_unk_id(v) == want_unk, "%s: unk %d, want %d", name, qkv_vocab_unk_id(v), want_unk);
    CHECK(qkv_vocab_bos_id(v) == want_bos, "%s: bos %d, want %d", name, qkv_vocab_bos_id(v), want_bos);
    CHECK(qkv_vocab_eos_id(v) == want_eos, "%s: eos %d, want %d", name, qkv_vocab_eos_id(v), want_eos);
    CHECK(qkv_vocab_pad_id(v) == want_pad, "%s: pad %d, want %d", name, qkv_vocab_pad_id(v), want_pad);
    for (int id = 0; id < qkv_vocab_size(v); id++) {
        const char *p = qkv_vocab_piece(v, id);
        CHECK(p && qkv_vocab_piece_to_id(v, p) == id, "%s: piece %d '%s' maps back to %d", name, id, p ? p : "",
              p ? qkv_vocab_piece_to_id(v, p) : -1);
    }
    CHECK(qkv_vocab_piece(v, -1) == NULL && qkv_vocab_piece(v, qkv_vocab_size(v)) == NULL,
          "%s: out-of-range ids must give NULL", name);
    CHECK(qkv_vocab_piece_to_id(v, "no such piece \xE2\x96\x81") == want_unk, "%s: unknown piece id", name);
    int bad_id = qkv_vocab_size(v);
    char *text;
    size_t len;
    CHECK(qkv_vocab_decode(v, &bad_id, 1, &text, &len) == QKV_ERR_ARG && strstr(qkv_last_error(), "out of range"),
          "%s: decoding an out-of-range id: '%s'", name, qkv_last_error());
done:
    qkv_vocab_free(v);
    free_lines(&cases);
    free_lines(&meta);
}

static void test_decode_rules(void)
{
    check_cases("uni_1000");
    check_cases("uni_1000_bytes");
    check_cases("bpe_1000_user");
    check_cases("uni_200_raw");
    check_cases("bpe_200_suffix");
    check_cases("bpe_300_unused");
    check_cases("char_bytes");
    check_cases("word_500");
    check_cases("uni_rules");
}

/* ---- normalizer for the trainers ----------------------------------------- */

/* Without byte fallback, the pieces of a line concatenate to its normalized
 * text (unknowns show their surface), which spm_normalize_text must give. */
static void check_normalize(const char *name)
{
    char fname[256], path[512];
    lines text, pieces;
    read_lines(&text, "test.txt");
    snprintf(fname, sizeof fname, "%s.pieces", name);
    read_lines(&pieces, fname);
    snprintf(path, sizeof path, "%s/spm/%s.model", test_golden_dir(), name);
    spm_model m;
    qkv_status s = spm_model_read(&m, path);
    CHECK(s == QKV_OK, "%s", qkv_last_error());
    for (int i = 0; s == QKV_OK && i < text.n && i < pieces.n; i++) {
        char *want = malloc(pieces.len[i] + 1), *got;
        size_t w = 0, got_len, n_invalid;
        for (size_t k = 0; k < pieces.len[i]; k++)
            if (pieces.line[i][k] != ' ')
                want[w++] = pieces.line[i][k];
        want[w] = 0;
        s = spm_normalize_text(&m, text.line[i], text.len[i], &got, &got_len, &n_invalid);
        CHECK(s == QKV_OK, "%s", qkv_last_error());
        if (s == QKV_OK) {
            CHECK(got_len == w && !memcmp(got, want, w), "%s line %d normalized:\n  got  '%.200s'\n  want '%.200s'",
                  name, i + 1, got, want);
            CHECK(n_invalid == utf8_count_invalid(text.line[i], text.len[i]), "%s line %d: %zu invalid, want %zu",
                  name, i + 1, n_invalid, utf8_count_invalid(text.line[i], text.len[i]));
            free(got);
        }
        free(want);
    }
    spm_model_free(&m);
    free_lines(&text);
    free_lines(&pieces);
}

static void test_normalize_text(void)
{
    check_normalize("uni_1000");    /* nmt_nfkc */
    check_normalize("uni_100_cf");  /* nfkc_cf, user-defined symbols */
    check_normalize("uni_200_raw"); /* identity, no dummy prefix, spaces kept */
    check_normalize("bpe_200_suffix");
}

/* ---- reader and writer ---------------------------------------------------- */

static int same_normalizer(const spm_normalizer_spec *a, const spm_normalizer_spec *b)
{
    return !strcmp(a->name ? a->name : "", b->name ? b->name : "") &&
           a->precompiled_charsmap_len == b->precompiled_charsmap_len &&
           (!a->precompiled_charsmap_len ||
            !memcmp(a->precompiled_charsmap, b->precompiled_charsmap, a->precompiled_charsmap_len)) &&
           a->add_dummy_prefix == b->add_dummy_prefix && a->remove_extra_whitespaces == b->remove_extra_whitespaces &&
           a->escape_whitespaces == b->escape_whitespaces && a->extra_len == b->extra_len &&
           (!a->extra_len || !memcmp(a->extra, b->extra, a->extra_len));
}

static void check_same_model(const spm_model *a, const spm_model *b, const char *name)
{
    CHECK(a->n_pieces == b->n_pieces, "%s: %d pieces after round trip, want %d", name, b->n_pieces, a->n_pieces);
    for (int i = 0; i < a->n_pieces && i < b->n_pieces; i++)
        if (strcmp(a->pieces[i].piece, b->pieces[i].piece) || a->pieces[i].score != b->pieces[i].score ||
            a->pieces[i].type != b->pieces[i].type) {
            CHECK(0, "%s: piece %d is '%s' %g %d after round trip, want '%s' %g %d", name, i, b->pieces[i].piece,
                  b->pieces[i].score, b->pieces[i].type, a->pieces[i].piece, a->pieces[i].score, a->pieces[i].type);
            break;
        }
    const spm_trainer_spec *x = &a->trainer, *y = &b->trainer;
    CHECK(x->model_type == y->model_type && x->vocab_size == y->vocab_size &&
              x->character_coverage == y->character_coverage && x->byte_fallback == y->byte_fallback &&
              x->unk_id == y->unk_id && x->bos_id == y->bos_id && x->eos_id == y->eos_id && x->pad_id == y->pad_id &&
              x->treat_whitespace_as_suffix == y->treat_whitespace_as_suffix && x->split_digits == y->split_digits &&
              x->split_by_whitespace == y->split_by_whitespace &&
              x->split_by_unicode_script == y->split_by_unicode_script && x->split_by_number == y->split_by_number &&
              x->max_sentencepiece_length == y->max_sentencepiece_length,
          "%s: trainer spec numbers differ after round trip", name);
    CHECK(!strcmp(x->unk_piece, y->unk_piece) && !strcmp(x->bos_piece, y->bos_piece) &&
              !strcmp(x->eos_piece, y->eos_piece) && !strcmp(x->pad_piece, y->pad_piece) &&
              !strcmp(x->unk_surface, y->unk_surface),
          "%s: trainer spec strings differ after round trip", name);
    CHECK(x->extra_len == y->extra_len && (!x->extra_len || !memcmp(x->extra, y->extra, x->extra_len)),
          "%s: trainer spec extra fields: %zu bytes after round trip, want %zu", name, y->extra_len, x->extra_len);
    CHECK(same_normalizer(&a->normalizer, &b->normalizer), "%s: normalizer spec differs after round trip", name);
    CHECK(a->has_denormalizer == b->has_denormalizer &&
              (!a->has_denormalizer || same_normalizer(&a->denormalizer, &b->denormalizer)),
          "%s: denormalizer spec differs after round trip", name);
    CHECK(a->extra_len == b->extra_len && (!a->extra_len || !memcmp(a->extra, b->extra, a->extra_len)),
          "%s: ModelProto extra fields differ after round trip", name);
}

static const char *all_models[] = {"uni_1000",   "bpe_1000",    "uni_1000_bytes", "bpe_1000_user",
                                   "uni_100_cf", "uni_200_raw", "bpe_200_suffix", "bpe_300_unused",
                                   "uni_300_unused", "char_bytes", "word_500", "uni_rules"};

static void test_model_roundtrip(void)
{
    const char *dir = getenv("QKV_SPM_WRITE_DIR");
    for (size_t k = 0; k < sizeof all_models / sizeof *all_models; k++) {
        const char *name = all_models[k];
        char path[512], out[512];
        snprintf(path, sizeof path, "%s/spm/%s.model", test_golden_dir(), name);
        spm_model a, b, c;
        if (spm_model_read(&a, path) != QKV_OK) {
            CHECK(0, "%s", qkv_last_error());
            continue;
        }
        snprintf(out, sizeof out, "%s/%s.model", dir ? dir : "build/tests", name);
        if (!dir)
            snprintf(out, sizeof out, "build/tests/spm_roundtrip_%s.model", name);
        qkv_status s = spm_model_write(&a, out);
        CHECK(s == QKV_OK, "writing %s: %s", out, qkv_last_error());
        s = spm_model_read(&b, out);
        CHECK(s == QKV_OK, "reading back %s: %s", out, qkv_last_error());
        if (s == QKV_OK) {
            check_same_model(&a, &b, name);
            /* writing is a fixed point: write(read(write(x))) == write(x) */
            uint8_t *b1, *b2;
            size_t n1, n2;
            CHECK(spm_model_serialize(&a, &b1, &n1) == QKV_OK && spm_model_serialize(&b, &b2, &n2) == QKV_OK,
                  "%s", qkv_last_error());
            CHECK(n1 == n2 && !memcmp(b1, b2, n1), "%s: second serialization differs (%zu vs %zu bytes)", name, n1,
                  n2);
            /* the committed copy that sentencepiece was shown to load
             * (scripts/golden/spm.py --check-written) is what we write */
            char cpath[512], *committed;
            size_t clen;
            snprintf(cpath, sizeof cpath, "%s/spm/c_written/%s.model", test_golden_dir(), name);
            FILE *probe = fopen(cpath, "rb");
            if (probe) {
                fclose(probe);
                CHECK(qkv_read_file(cpath, &committed, &clen) == QKV_OK, "%s", qkv_last_error());
                CHECK(clen == n1 && !memcmp(committed, b1, n1),
                      "%s: the writer's output (%zu bytes) differs from %s (%zu bytes)", name, n1, cpath, clen);
                free(committed);
            }
            /* the rewritten model still encodes as sentencepiece does, and
             * so does one saved through the public API */
            qkv_vocab *v, *v2 = NULL;
            CHECK(qkv_vocab_load_memory(b1, n1, &v) == QKV_OK, "%s", qkv_last_error());
            if (v) {
                char saved[512];
                snprintf(saved, sizeof saved, "build/tests/spm_saved_%s.model", name);
                CHECK(qkv_vocab_save(v, saved) == QKV_OK, "%s", qkv_last_error());
                CHECK(qkv_vocab_load(saved, &v2) == QKV_OK, "%s", qkv_last_error());
                remove(saved);
            }
            lines text, ids;
            char fname[256];
            read_lines(&text, text_of(name));
            snprintf(fname, sizeof fname, "%s.ids", name);
            read_lines(&ids, fname);
            for (int i = 0; v && i < text.n && i < ids.n; i++) {
                int *got;
                size_t n;
                char buf[1 << 16];
                size_t w = 0;
                CHECK(qkv_vocab_encode(v, text.line[i], text.len[i], &got, &n, NULL) == QKV_OK, "%s",
                      qkv_last_error());
                for (size_t j = 0; j < n && w + 16 < sizeof buf; j++)
                    w += (size_t)snprintf(buf + w, sizeof buf - w, j ? " %d" : "%d", got[j]);
                buf[w] = 0;
                CHECK(!strcmp(buf, ids.line[i]), "%s rewritten, line %d: got %.200s, want %.200s", name, i + 1, buf,
                      ids.line[i]);
                if (v2) {
                    int *got2;
                    size_t n2;
                    CHECK(qkv_vocab_encode(v2, text.line[i], text.len[i], &got2, &n2, NULL) == QKV_OK, "%s",
                          qkv_last_error());
                    CHECK(n2 == n && (!n || !memcmp(got, got2, n * sizeof *got)),
                          "%s saved with qkv_vocab_save, line %d: %zu ids differ from the %zu of the original",
                          name, i + 1, n2, n);
                    free(got2);
                }
                free(got);
            }
            qkv_vocab_free(v);
            qkv_vocab_free(v2);
            free_lines(&text);
            free_lines(&ids);
            free(b1);
            free(b2);
            /* read -> write -> read from memory gives the same model too */
            CHECK(spm_model_serialize(&b, &b1, &n1) == QKV_OK && spm_model_read_memory(&c, b1, n1, "m") == QKV_OK,
                  "%s", qkv_last_error());
            check_same_model(&a, &c, name);
            spm_model_free(&c);
            free(b1);
            spm_model_free(&b);
        }
        if (!dir)
            remove(out);
        spm_model_free(&a);
    }
}

/* A model built in memory (as the trainers do) is written and read back. */
static void test_model_from_scratch(void)
{
    spm_model m;
    CHECK(spm_model_init(&m) == QKV_OK, "%s", qkv_last_error());
    const char *p[] = {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "b", "\xE2\x96\x81" "ab", "ab"};
    spm_piece_type t[] = {SPM_UNKNOWN, SPM_CONTROL, SPM_CONTROL, SPM_NORMAL,
                          SPM_NORMAL,  SPM_NORMAL,  SPM_NORMAL,  SPM_USER_DEFINED};
    m.n_pieces = 8;
    m.pieces = calloc(8, sizeof *m.pieces);
    for (int i = 0; i < 8; i++) {
        m.pieces[i].piece = strdup(p[i]);
        m.pieces[i].type = t[i];
        m.pieces[i].score = i < 3 ? 0.0f : -(float)i;
    }
    m.trainer.vocab_size = 8;
    m.trainer.pad_id = -1;
    m.normalizer.name = strdup("identity");
    uint8_t *buf;
    size_t n;
    CHECK(spm_model_serialize(&m, &buf, &n) == QKV_OK, "%s", qkv_last_error());
    spm_model r;
    CHECK(spm_model_read_memory(&r, buf, n, "scratch") == QKV_OK, "%s", qkv_last_error());
    check_same_model(&m, &r, "scratch");
    CHECK(r.trainer.pad_id == -1, "negative pad_id read back as %d", r.trainer.pad_id);
    qkv_vocab *v;
    CHECK(qkv_vocab_load_memory(buf, n, &v) == QKV_OK, "%s", qkv_last_error());
    int *ids;
    size_t nid;
    /* "ab" is user-defined: kept whole, not split as ▁ab would be */
    CHECK(qkv_vocab_encode(v, "ab ab", 5, &ids, &nid, NULL) == QKV_OK, "%s", qkv_last_error());
    CHECK(nid == 4 && ids[0] == 3 && ids[1] == 7 && ids[2] == 3 && ids[3] == 7,
          "encode 'ab ab': got %zu ids (%d %d %d %d), want 3 7 3 7", nid, nid > 0 ? ids[0] : -1,
          nid > 1 ? ids[1] : -1, nid > 2 ? ids[2] : -1, nid > 3 ? ids[3] : -1);
    free(ids);
    qkv_vocab_free(v);
    spm_model_free(&r);
    free(buf);
    spm_model_free(&m);
}

/* ---- malformed models ----------------------------------------------------- */

static void load_file(const char *name, char **data, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/spm/%s.model", test_golden_dir(), name);
    CHECK(qkv_read_file(path, data, len) == QKV_OK, "%s", qkv_last_error());
}

/* A damaged model either loads (a cut at a field boundary is a valid,
 * smaller model) and then encodes without fault, or fails with
 * QKV_ERR_FORMAT and a message. */
static int try_load(const void *data, size_t len, const char *what, size_t at)
{
    qkv_vocab *v;
    qkv_status s = qkv_vocab_load_memory(data, len, &v);
    if (s == QKV_OK) {
        int *ids;
        size_t n;
        const char *line = "Hello \xE4\xBD\xA0\xE5\xA5\xBD \xff ﬁ ①  end ";
        qkv_status e = qkv_vocab_encode(v, line, strlen(line), &ids, &n, NULL);
        CHECK(e == QKV_OK, "%s at %zu: loads but encode fails: %s", what, at, qkv_last_error());
        if (e == QKV_OK) {
            char *text;
            size_t tl;
            CHECK(qkv_vocab_decode(v, ids, n, &text, &tl) == QKV_OK, "%s at %zu: decode: %s", what, at,
                  qkv_last_error());
            free(text);
            free(ids);
        }
        qkv_vocab_free(v);
        return 0;
    }
    CHECK(s == QKV_ERR_FORMAT, "%s at %zu: status %s (%s)", what, at,
          qkv_status_name(s), qkv_last_error());
    CHECK(strlen(qkv_last_error()) > 10, "%s at %zu: no message", what, at);
    return 1;
}

static void test_truncated_models(void)
{
    const char *names[] = {"uni_1000_bytes", "bpe_200_suffix"};
    for (int k = 0; k < 2; k++) {
        char *data;
        size_t len;
        load_file(names[k], &data, &len);
        size_t failed = 0, inside_field = 0;
        for (size_t cut = 0; cut < len; cut++) {
            failed += (size_t)try_load(data, cut, names[k], cut);
            if (test_failures() > 5)
                break;
        }
        /* the message names the byte offset for a cut inside a field */
        spm_model m;
        qkv_status s = spm_model_read_memory(&m, data, len - 1, "cut.model");
        CHECK(s == QKV_ERR_FORMAT && strstr(qkv_last_error(), "cut.model: byte "),
              "last byte cut: status %s, message '%s'", qkv_status_name(s), qkv_last_error());
        inside_field = len - 1 - failed;
        /* nearly every cut lands inside a field or leaves no <unk> */
        CHECK(failed > len * 9 / 10, "%s: only %zu of %zu truncations rejected (%zu loaded)", names[k], failed, len,
              inside_field);
        free(data);
    }
}

static void test_corrupted_models(void)
{
    const char *names[] = {"uni_1000_bytes", "uni_100_cf", "bpe_1000_user"};
    uint64_t state = 0x9E3779B97F4A7C15ull;
    for (int k = 0; k < 3; k++) {
        char *data;
        size_t len;
        load_file(names[k], &data, &len);
        char *copy = malloc(len);
        for (int trial = 0; trial < 400 && test_failures() < 5; trial++) {
            memcpy(copy, data, len);
            int flips = 1 + trial % 4;
            size_t at = 0;
            for (int f = 0; f < flips; f++) {
                state = state * 6364136223846793005ull + 1442695040888963407ull;
                /* half the flips go into the charsmap trie, which is the
                 * largest part of nmt/nfkc models */
                at = (size_t)(state >> 33) % len;
                copy[at] ^= (char)(1u << ((state >> 20) & 7));
            }
            try_load(copy, len, names[k], at);
        }
        free(copy);
        free(data);
    }
    /* hand-made malformations */
    const struct {
        const char *bytes;
        size_t len;
        const char *why;
    } bad[] = {
        {"\x0a\x03\x0a\x05<", 5, "piece string longer than its message"},
        {"\x0a\x80", 2, "truncated length varint"},
        {"\x0b", 1, "group wire type"},
        {"\x0a\x02\x15\x00", 4, "truncated fixed32 score"},
        {"\x12\x02\x18\x07", 4, "model_type 7"},
        {"\x0a\x07\x0a\x05<unk>\x0a\x07\x0a\x05<unk>", 18, "duplicate piece"},
        {"\x0a\x05\x0a\x01" "a\x18\x01", 7, "no <unk>"},
        {"\x0a\x02\x0a\x00\x0a\x07\x0a\x05<unk>", 13, "empty piece"},
        {"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11, "varint too long"},
        {"\x00", 1, "field number 0"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        qkv_vocab *v = NULL;
        qkv_status s = qkv_vocab_load_memory(bad[i].bytes, bad[i].len, &v);
        CHECK(s == QKV_ERR_FORMAT, "%s: status %s, want format (%s)", bad[i].why, qkv_status_name(s),
              qkv_last_error());
        qkv_vocab_free(v);
    }
    qkv_vocab *v = NULL;
    CHECK(qkv_vocab_load("no/such/file.model", &v) == QKV_ERR_IO, "missing file: %s", qkv_last_error());
}

/* ---- invalid UTF-8 ------------------------------------------------------- */

static void test_invalid_utf8(void)
{
    qkv_vocab *v = load("uni_1000");
    if (!v)
        return;
    const struct {
        const char *s;
        size_t n_invalid;
    } cases[] = {
        {"ok", 0},
        {"\xff", 1},
        {"a\xe4\xb8 b", 2},          /* truncated 3-byte sequence: two bad bytes */
        {"\xc0\xaf", 2},             /* overlong '/' */
        {"\xed\xa0\x80", 3},         /* surrogate */
        {"\xf4\x90\x80\x80", 4},     /* above U+10FFFF */
        {"\xef\xbf\xbd", 0},         /* a literal U+FFFD is valid */
        {"\x80\x80\x80 \xe4\xbd\xa0", 3},
    };
    spm_state st = {0};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *s = cases[i].s;
        size_t len = strlen(s);
        CHECK(spm_encode(v, &st, s, len) == QKV_OK, "%s", qkv_last_error());
        CHECK(st.n_invalid == cases[i].n_invalid, "case %zu: %zu invalid bytes counted, want %zu", i, st.n_invalid,
              cases[i].n_invalid);
        CHECK(utf8_count_invalid(s, len) == cases[i].n_invalid, "case %zu: utf8_count_invalid %zu, want %zu", i,
              utf8_count_invalid(s, len), cases[i].n_invalid);
        /* deterministic: the same ids again, and each bad byte is one U+FFFD
         * in the normalized text */
        int first[64];
        size_t n1 = st.n_tok < 64 ? st.n_tok : 64;
        for (size_t k = 0; k < n1; k++)
            first[k] = st.tok[k].id;
        size_t n_fffd = 0;
        for (size_t k = 0; k + 3 <= st.normalized.len; k++)
            n_fffd += !memcmp(st.normalized.p + k, "\xef\xbf\xbd", 3);
        CHECK(n_fffd >= cases[i].n_invalid, "case %zu: %zu U+FFFD in the normalized text, want >= %zu", i, n_fffd,
              cases[i].n_invalid);
        CHECK(spm_encode(v, &st, s, len) == QKV_OK && st.n_tok == n1, "case %zu: second encode differs", i);
        for (size_t k = 0; k < n1 && k < st.n_tok; k++)
            CHECK(st.tok[k].id == first[k], "case %zu: token %zu is %d then %d", i, k, first[k], st.tok[k].id);
    }
    /* every byte value alone and in random strings: no fault, counts agree */
    uint64_t r = 12345;
    char buf[64];
    for (int trial = 0; trial < 3000; trial++) {
        size_t len = (size_t)trial % 40;
        for (size_t k = 0; k < len; k++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            buf[k] = (char)(r >> 56);
        }
        CHECK(spm_encode(v, &st, buf, len) == QKV_OK, "%s", qkv_last_error());
        CHECK(st.n_invalid == utf8_count_invalid(buf, len), "random %d: %zu vs %zu", trial, st.n_invalid,
              utf8_count_invalid(buf, len));
        if (test_failures())
            break;
    }
    spm_state_free(&st);
    qkv_vocab_free(v);
}

/* One vocabulary, many threads: every thread's encodings equal the serial
 * ones (the vocabulary is immutable; state lives in the caller). */
static void test_threads_share_vocab(void)
{
    qkv_vocab *v = load("bpe_1000_user");
    lines text;
    if (!v || !read_lines(&text, "test.txt")) {
        qkv_vocab_free(v);
        return;
    }
    size_t *want_n = calloc((size_t)text.n, sizeof *want_n);
    int **want = calloc((size_t)text.n, sizeof *want);
    for (int i = 0; i < text.n; i++)
        CHECK(qkv_vocab_encode(v, text.line[i], text.len[i], &want[i], &want_n[i], NULL) == QKV_OK, "%s",
              qkv_last_error());
    int bad = 0;
#pragma omp parallel for schedule(dynamic) reduction(+ : bad)
    for (int r = 0; r < 8 * text.n; r++) {
        int i = r % text.n, *got;
        size_t n;
        if (qkv_vocab_encode(v, text.line[i], text.len[i], &got, &n, NULL) != QKV_OK) {
            bad++;
            continue;
        }
        bad += n != want_n[i] || (n && memcmp(got, want[i], n * sizeof *got));
        free(got);
    }
    CHECK(bad == 0, "%d of %d threaded encodings differ from the serial ones", bad, 8 * text.n);
    for (int i = 0; i < text.n; i++)
        free(want[i]);
    free(want);
    free(want_n);
    free_lines(&text);
    qkv_vocab_free(v);
}

static const test_case cases[] = {
    TEST(test_uni_1000),      TEST(test_bpe_1000),   TEST(test_uni_1000_bytes), TEST(test_bpe_1000_user),
    TEST(test_uni_100_cf),    TEST(test_uni_200_raw), TEST(test_bpe_200_suffix),
    TEST(test_bpe_300_unused), TEST(test_uni_300_unused), TEST(test_char_bytes), TEST(test_word_500),
    TEST(test_uni_rules),
    TEST(test_decode_rules),  TEST(test_normalize_text), TEST(test_model_roundtrip),
    TEST(test_model_from_scratch), TEST(test_truncated_models), TEST(test_corrupted_models),
    TEST(test_invalid_utf8),  TEST(test_threads_share_vocab),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
