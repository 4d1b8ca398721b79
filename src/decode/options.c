/* qkv_translate_options: defaults, validation, and their resolution into
 * search_params against a model's own generation defaults. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "decode/translator.h"
#include "kernels/qlinear.h"

qkv_translate_options qkv_translate_default_options(void)
{
    return (qkv_translate_options){
        .beam_size = 0,
        .n_best = 1,
        .length_penalty_kind = QKV_LENGTH_PENALTY_POWER,
        .length_penalty = 1.0f,
        .early_stopping = QKV_EARLY_STOPPING_HEURISTIC,
        .max_length = 0,
        .max_length_ratio = 0,
        .max_length_offset = 0,
        .min_length = 0,
        .no_repeat_ngram_size = 0,
        .repetition_penalty = 1.0f,
        .forced_eos = -1,
        .bad_word_ids = NULL,
        .n_bad_word_ids = 0,
        .target_prefix = NULL,
        .sample = 0,
        .temperature = 1.0f,
        .top_k = 0,
        .top_p = 1.0f,
        .seed = 1,
        .num_samples = 1,
        .batch_size = 32,
        .attention = 0,
        .compute_type = NULL,
    };
}

qkv_status qkv_translate_validate_options(const qkv_translate_options *o)
{
#define BAD(...) return qkv_fail(QKV_ERR_CONFIG, "translate options: " __VA_ARGS__)
    const char *ct;
    if (qkv_compute_type_resolve(o->compute_type, &ct) != QKV_OK)
        BAD("compute_type = \"%s\", expected default, auto, float32, int8, int8_float32, int8_bfloat16 or bfloat16",
            o->compute_type);
    if (o->beam_size < 0 || o->beam_size > SEARCH_MAX_BEAM)
        BAD("beam_size = %d, expected 0 (model default) or 1..%d", o->beam_size, SEARCH_MAX_BEAM);
    if (o->n_best < 0)
        BAD("n_best = %d, expected >= 0 (0: every hypothesis)", o->n_best);
    if (o->length_penalty_kind != QKV_LENGTH_PENALTY_POWER && o->length_penalty_kind != QKV_LENGTH_PENALTY_GNMT)
        BAD("length_penalty_kind = %d, expected POWER or GNMT", (int)o->length_penalty_kind);
    if (!isfinite(o->length_penalty))
        BAD("length_penalty must be finite");
    if (o->early_stopping < QKV_EARLY_STOPPING_HEURISTIC || o->early_stopping > QKV_EARLY_STOPPING_NEVER)
        BAD("early_stopping = %d, expected HEURISTIC, TRUE or NEVER", (int)o->early_stopping);
    if (o->max_length < 0 || o->max_length == 1)
        BAD("max_length = %d, expected 0 (model default) or >= 2 (the decoder start token counts)", o->max_length);
    if (!(o->max_length_ratio >= 0) || !isfinite(o->max_length_ratio))
        BAD("max_length_ratio must be >= 0");
    if (o->min_length < 0)
        BAD("min_length = %d, expected >= 0", o->min_length);
    if (o->no_repeat_ngram_size < 0)
        BAD("no_repeat_ngram_size = %d, expected >= 0", o->no_repeat_ngram_size);
    if (!(o->repetition_penalty > 0) || !isfinite(o->repetition_penalty))
        BAD("repetition_penalty must be > 0 (1 is off)");
    if (o->forced_eos < -1 || o->forced_eos > 1)
        BAD("forced_eos = %d, expected -1 (model default), 0 or 1", o->forced_eos);
    if (o->n_bad_word_ids < 0 || (o->n_bad_word_ids > 0 && !o->bad_word_ids))
        BAD("bad_word_ids is NULL with n_bad_word_ids = %d", o->n_bad_word_ids);
    for (int i = 0; i < o->n_bad_word_ids; i++)
        if (o->bad_word_ids[i] < -1)
            BAD("bad_word_ids[%d] = %d, expected an id or -1 (separator)", i, o->bad_word_ids[i]);
    if (!(o->temperature > 0) || !isfinite(o->temperature))
        BAD("temperature must be > 0");
    if (o->top_k < 0)
        BAD("top_k = %d, expected >= 0 (0 is off)", o->top_k);
    if (!(o->top_p > 0 && o->top_p <= 1))
        BAD("top_p must be in (0, 1]");
    if (o->num_samples < 1 || o->num_samples > 1024)
        BAD("num_samples = %d, expected 1..1024", o->num_samples);
    if (o->sample && o->n_best > o->num_samples)
        BAD("n_best = %d exceeds num_samples = %d", o->n_best, o->num_samples);
    if (!o->sample && o->beam_size > 0 && o->n_best > o->beam_size)
        BAD("n_best = %d exceeds beam_size = %d", o->n_best, o->beam_size);
    if (o->batch_size < 1)
        BAD("batch_size = %d, expected >= 1", o->batch_size);
#undef BAD
    return QKV_OK;
}

qkv_status translator_resolve(const qkv_translator *t, const qkv_translate_options *o, const int *prefix,
                              int prefix_len, search_params *p, int **owned)
{
    *owned = NULL;
    QKV_TRY(qkv_translate_validate_options(o));
    const qkv_model_config *cfg = qkv_model_get_config(t->model);
    const translator_defaults *d = &t->defaults;
    *p = (search_params){0};
    p->beam_size = o->sample ? 1 : (o->beam_size ? o->beam_size : d->num_beams);
    if (!o->sample && o->n_best > p->beam_size)
        return qkv_fail(QKV_ERR_CONFIG, "translate options: n_best = %d exceeds the beam size %d", o->n_best,
                        p->beam_size);
    p->sample = o->sample;
    const char *ct = "float32";
    qkv_compute_type_resolve(o->compute_type, &ct);
    p->weight_type = qlinear_type_of(ct);
    if (!o->compute_type || !o->compute_type[0] || !strcmp(o->compute_type, "default"))
        p->weight_type = t->own_type; /* the type the model file was written in */
    p->num_samples = o->sample ? o->num_samples : 1;
    p->n_best = o->n_best ? o->n_best : (o->sample ? p->num_samples : p->beam_size);
    p->top_k = o->top_k;
    p->temperature = o->temperature;
    p->top_p = o->top_p;
    p->seed = o->seed;
    p->lp_kind = o->length_penalty_kind;
    p->alpha = o->length_penalty;
    p->early_stopping = o->early_stopping;
    p->max_length = o->max_length ? o->max_length : d->max_length;
    p->max_length_ratio = o->max_length_ratio;
    p->max_length_offset = o->max_length_offset;
    p->min_length = o->min_length;
    p->no_repeat_ngram_size = o->no_repeat_ngram_size;
    p->repetition_penalty = o->repetition_penalty;
    p->forced_eos = o->forced_eos >= 0 ? o->forced_eos : d->forced_eos;
    p->eos_id = cfg->eos_id;
    p->batch_size = o->batch_size;
    /* bad words: the pad id, the model's list, then the caller's */
    int nb = 2 + d->n_bad_words + 1 + o->n_bad_word_ids + 1;
    int np = 1 + prefix_len;
    int *buf = malloc((size_t)(nb + np) * sizeof(int));
    if (!buf)
        return qkv_fail(QKV_ERR_NOMEM, "translate: out of memory");
    int n = 0;
    if (cfg->pad_id >= 0 && cfg->pad_id < cfg->tgt_vocab_size && cfg->pad_id != cfg->eos_id) {
        buf[n++] = cfg->pad_id;
        buf[n++] = -1;
    }
    for (int i = 0; i < d->n_bad_words; i++)
        buf[n++] = d->bad_words[i];
    buf[n++] = -1;
    for (int i = 0; i < o->n_bad_word_ids; i++) {
        if (o->bad_word_ids[i] >= cfg->tgt_vocab_size) {
            free(buf);
            return qkv_fail(QKV_ERR_CONFIG, "translate options: bad_word_ids[%d] = %d is outside the vocabulary [0, %d)",
                            i, o->bad_word_ids[i], cfg->tgt_vocab_size);
        }
        buf[n++] = o->bad_word_ids[i];
    }
    buf[n++] = -1;
    p->bad = buf;
    p->n_bad = n;
    int *prompt = buf + nb;
    prompt[0] = cfg->decoder_start_id;
    for (int i = 0; i < prefix_len; i++)
        prompt[1 + i] = prefix[i];
    p->prompt = prompt;
    p->prompt_len = np;
    *owned = buf;
    return QKV_OK;
}
