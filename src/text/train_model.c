/* qkv_vocab_train: options, the pieces with fixed ids (special, user-defined,
 * byte), the model written for sentencepiece, and PREFIX.vocab. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/context.h"
#include "base/io.h"
#include "base/status.h"
#include "text/train.h"

qkv_vocab_train_options qkv_vocab_train_default_options(void)
{
    qkv_vocab_train_options o;
    memset(&o, 0, sizeof o);
    o.type = QKV_VOCAB_UNIGRAM;
    o.vocab_size = 8000;
    o.character_coverage = 0; /* automatic, see qkv.h */
    o.normalization = "nmt_nfkc";
    o.unk_id = 0;
    o.bos_id = 1;
    o.eos_id = 2;
    o.pad_id = -1;
    o.max_sentence_bytes = 4192;
    o.max_piece_length = 16;
    o.split_by_number = 1;
    o.split_by_unicode_script = 1;
    o.seed_pieces = 1000000;
    o.shrinking_factor = 0.75f;
    o.em_sub_iterations = 2;
    o.seed = 1;
    return o;
}

static qkv_status check_options(const qkv_vocab_train_options *o)
{
    if (o->type != QKV_VOCAB_UNIGRAM && o->type != QKV_VOCAB_BPE)
        return qkv_fail(QKV_ERR_CONFIG, "vocab train: type %d: expected unigram or bpe", (int)o->type);
    if (o->vocab_size <= 0)
        return qkv_fail(QKV_ERR_CONFIG, "vocab train: vocab size %d: expected a positive number", o->vocab_size);
    if (o->character_coverage > 1 || (o->character_coverage > 0 && o->character_coverage < 0.5f))
        return qkv_fail(QKV_ERR_CONFIG, "vocab train: character coverage %g: expected a value in [0.5, 1]",
                        (double)o->character_coverage);
    if (o->max_piece_length < 1 || o->max_piece_length > 512)
        return qkv_fail(QKV_ERR_CONFIG, "vocab train: max piece length %d: expected 1..512", o->max_piece_length);
    if (o->max_sentence_bytes < 10)
        return qkv_fail(QKV_ERR_CONFIG, "vocab train: max sentence bytes %d: expected at least 10",
                        o->max_sentence_bytes);
    if (o->shrinking_factor < 0.5f || o->shrinking_factor > 0.95f)
        return qkv_fail(QKV_ERR_CONFIG, "vocab train: shrinking factor %g: expected 0.5..0.95",
                        (double)o->shrinking_factor);
    if (o->em_sub_iterations < 1 || o->em_sub_iterations > 10)
        return qkv_fail(QKV_ERR_CONFIG, "vocab train: EM sub-iterations %d: expected 1..10", o->em_sub_iterations);
    if (o->seed_pieces < 1000)
        return qkv_fail(QKV_ERR_CONFIG, "vocab train: seed pieces %d: expected at least 1000", o->seed_pieces);
    if (o->max_sentences < 0)
        return qkv_fail(QKV_ERR_CONFIG, "vocab train: max sentences %ld: expected >= 0 (0: all)", o->max_sentences);
    if (o->unk_id < 0)
        return qkv_fail(QKV_ERR_CONFIG, "vocab train: unk id %d: <unk> must have an id", o->unk_id);
    const int ids[4] = {o->unk_id, o->bos_id, o->eos_id, o->pad_id};
    const char *names[4] = {"unk", "bos", "eos", "pad"};
    for (int i = 0; i < 4; i++) {
        if (ids[i] >= o->vocab_size)
            return qkv_fail(QKV_ERR_CONFIG, "vocab train: %s id %d: expected less than the vocab size %d", names[i],
                            ids[i], o->vocab_size);
        for (int j = 0; j < i; j++)
            if (ids[i] >= 0 && ids[i] == ids[j])
                return qkv_fail(QKV_ERR_CONFIG, "vocab train: %s id and %s id are both %d", names[j], names[i],
                                ids[i]);
    }
    static const char *const special[4] = {"<unk>", "<s>", "</s>", "<pad>"};
    for (int k = 0; k < o->n_user_defined_symbols; k++) {
        const char *u = o->user_defined_symbols[k];
        if (!u || !*u)
            return qkv_fail(QKV_ERR_CONFIG, "vocab train: user-defined symbol %d is empty", k + 1);
        for (int j = 0; j < k; j++)
            if (!strcmp(u, o->user_defined_symbols[j]))
                return qkv_fail(QKV_ERR_CONFIG, "vocab train: user-defined symbol '%s' is given twice", u);
        for (int j = 0; j < 4; j++)
            if (!strcmp(u, special[j]))
                return qkv_fail(QKV_ERR_CONFIG,
                                "vocab train: user-defined symbol '%s' is a special piece (use --%s-id)", u,
                                names[j]);
    }
    return QKV_OK;
}

/* The pieces with fixed ids, in sentencepiece's order (InitMetaPieces):
 * unk/bos/eos/pad at their ids, then user-defined symbols and the 256 byte
 * pieces at the lowest free ids. Fills type[id] and piece[id] for those ids
 * (other entries stay 0 / NULL). Returns the count. */
static int meta_pieces(const qkv_vocab_train_options *o, spm_piece_type *type, char **piece, int *oom)
{
    static const char *const special[4] = {"<unk>", "<s>", "</s>", "<pad>"};
    const int ids[4] = {o->unk_id, o->bos_id, o->eos_id, o->pad_id};
    int n = 0;
    for (int i = 0; i < 4; i++) {
        if (ids[i] < 0)
            continue;
        type[ids[i]] = i == 0 ? SPM_UNKNOWN : SPM_CONTROL;
        piece[ids[i]] = strdup(special[i]);
        *oom |= !piece[ids[i]];
        n++;
    }
    int next = 0;
    int n_extra = o->n_user_defined_symbols + (o->byte_fallback ? 256 : 0);
    for (int k = 0; k < n_extra && next < o->vocab_size; k++) {
        while (next < o->vocab_size && type[next])
            next++;
        if (next == o->vocab_size)
            break;
        if (k < o->n_user_defined_symbols) {
            type[next] = SPM_USER_DEFINED;
            piece[next] = strdup(o->user_defined_symbols[k]);
        } else {
            char b[16];
            snprintf(b, sizeof b, "<0x%02X>", (unsigned)(k - o->n_user_defined_symbols) & 0xFFu);
            type[next] = SPM_BYTE;
            piece[next] = strdup(b);
        }
        *oom |= !piece[next];
        n++;
    }
    return n;
}

static qkv_status set_string(char **dst, const char *src)
{
    char *s = strdup(src);
    if (!s)
        return qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory");
    free(*dst);
    *dst = s;
    return QKV_OK;
}

qkv_status train_vocab_model(spm_model *m, const qkv_vocab_train_options *opt_in, const char *const *inputs,
                             int n_inputs)
{
    memset(m, 0, sizeof *m);
    qkv_vocab_train_options opt = *opt_in;
    QKV_TRY(check_options(&opt));
    if (n_inputs <= 0)
        return qkv_fail(QKV_ERR_ARG, "vocab train: no input file");
    if (opt.threads <= 0 && ctx_default_threads(&opt.threads) != QKV_OK)
        opt.threads = 1;
    const uint8_t *map;
    size_t map_len;
    QKV_TRY(train_charsmap(opt.normalization, &map, &map_len));

    int V = opt.vocab_size;
    spm_piece_type *type = calloc((size_t)V, sizeof *type);
    char **meta = calloc((size_t)V, sizeof *meta);
    if (!type || !meta) {
        free(type);
        free(meta);
        return qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory for %d pieces", V);
    }
    int oom = 0;
    int n_meta = meta_pieces(&opt, type, meta, &oom);
    int n_wanted_meta = (opt.unk_id >= 0) + (opt.bos_id >= 0) + (opt.eos_id >= 0) + (opt.pad_id >= 0) +
                        opt.n_user_defined_symbols + (opt.byte_fallback ? 256 : 0);
    qkv_status st = QKV_OK;
    if (oom)
        st = qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory");
    else if (n_meta < n_wanted_meta || n_meta >= V)
        st = qkv_fail(QKV_ERR_CONFIG,
                      "vocab train: vocab size %d leaves no room for normal pieces after %d special, "
                      "user-defined and byte pieces",
                      V, n_wanted_meta);

    train_corpus c;
    train_pieces pieces = {0};
    int corpus_loaded = 0;
    if (st == QKV_OK) {
        st = train_corpus_load(&c, &opt, inputs, n_inputs);
        corpus_loaded = st == QKV_OK;
    }
    if (st == QKV_OK) {
        c.n_meta = n_meta;
        if (c.n_req + n_meta > V)
            st = qkv_fail(QKV_ERR_CONFIG,
                          "vocab train: vocab size %d is smaller than the %d required characters plus %d special, "
                          "user-defined and byte pieces; raise --vocab-size or lower --character-coverage",
                          V, c.n_req, n_meta);
    }
    if (st == QKV_OK)
        st = opt.type == QKV_VOCAB_UNIGRAM ? train_unigram(&pieces, &c) : train_bpe(&pieces, &c);
    if (st == QKV_OK && pieces.n + n_meta != V)
        st = qkv_fail(QKV_ERR_CONFIG,
                      "vocab train: vocabulary size %d is too high for this text: %d pieces were found besides "
                      "the %d special, user-defined and byte pieces; use --vocab-size %d or less",
                      V, pieces.n, n_meta, pieces.n + n_meta);
    if (st == QKV_OK)
        st = spm_model_init(m);
    if (st == QKV_OK) {
        m->pieces = calloc((size_t)V, sizeof *m->pieces);
        if (!m->pieces)
            st = qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory");
    }
    for (int id = 0, k = 0; st == QKV_OK && id < V; id++) {
        spm_piece *p = &m->pieces[id];
        if (type[id]) {
            p->piece = meta[id];
            meta[id] = NULL;
            p->type = type[id];
            p->score = 0;
        } else {
            p->piece = pieces.piece[k];
            pieces.piece[k] = NULL;
            p->type = SPM_NORMAL;
            p->score = pieces.score[k++];
        }
        m->n_pieces = id + 1;
    }
    if (st == QKV_OK) {
        spm_trainer_spec *t = &m->trainer;
        t->model_type = opt.type == QKV_VOCAB_UNIGRAM ? SPM_UNIGRAM : SPM_BPE;
        t->vocab_size = V;
        t->character_coverage = c.coverage;
        t->byte_fallback = opt.byte_fallback;
        t->unk_id = opt.unk_id;
        t->bos_id = opt.bos_id;
        t->eos_id = opt.eos_id;
        t->pad_id = opt.pad_id;
        t->split_digits = opt.split_digits;
        t->split_by_number = opt.split_by_number;
        t->split_by_unicode_script = opt.split_by_unicode_script;
        t->max_sentencepiece_length = opt.max_piece_length;
        spm_normalizer_spec *ns = &m->normalizer;
        st = set_string(&ns->name, opt.normalization);
        if (st == QKV_OK && map_len) {
            free(ns->precompiled_charsmap);
            ns->precompiled_charsmap = malloc(map_len);
            if (!ns->precompiled_charsmap)
                st = qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory");
            else
                memcpy(ns->precompiled_charsmap, map, map_len);
            ns->precompiled_charsmap_len = map_len;
        }
        ns->add_dummy_prefix = 1;
        ns->remove_extra_whitespaces = 1;
        ns->escape_whitespaces = 1;
    }
    if (st != QKV_OK)
        spm_model_free(m);
    for (int i = 0; i < V; i++)
        free(meta[i]);
    free(meta);
    free(type);
    train_pieces_free(&pieces);
    if (corpus_loaded)
        train_corpus_free(&c);
    return st;
}

qkv_status train_write_vocab(const spm_model *m, const char *path)
{
    qkv_afile f;
    QKV_TRY(qkv_afile_open(&f, path));
    for (int i = 0; i < m->n_pieces; i++) {
        /* %g: the 6 significant digits of C++'s default ostream << float */
        if (fprintf(f.fp, "%s\t%g\n", m->pieces[i].piece, (double)m->pieces[i].score) < 0) {
            qkv_afile_abort(&f);
            return qkv_fail(QKV_ERR_IO, "%s: write failed", path);
        }
    }
    return qkv_afile_commit(&f);
}

qkv_status qkv_vocab_train(const qkv_vocab_train_options *opt, const char *const *inputs, int n_inputs,
                           const char *out_prefix)
{
    if (!opt || !out_prefix || !*out_prefix)
        return qkv_fail(QKV_ERR_ARG, "vocab train: no output prefix");
    spm_model m;
    QKV_TRY(train_vocab_model(&m, opt, inputs, n_inputs));
    size_t n = strlen(out_prefix) + 8;
    char *path = malloc(n);
    qkv_status st = path ? QKV_OK : qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory");
    if (st == QKV_OK) {
        snprintf(path, n, "%s.model", out_prefix);
        st = spm_model_write(&m, path);
    }
    if (st == QKV_OK) {
        snprintf(path, n, "%s.vocab", out_prefix);
        st = train_write_vocab(&m, path);
    }
    free(path);
    spm_model_free(&m);
    return st;
}
