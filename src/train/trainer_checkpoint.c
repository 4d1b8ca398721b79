/* The training state in checkpoint.qkv: written by the loop, read back by
 * qkv_trainer_resume (trainer.h). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/io.h"
#include "base/status.h"
#include "train/checkpoint.h"
#include "train/trainer_impl.h"

/* ---- checkpoints ---------------------------------------------------------- */

static char *hex_encode(const unsigned char *b, size_t n)
{
    char *s = malloc(2 * n + 1);
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++)
        sprintf(s + 2 * i, "%02x", b[i]);
    return s;
}

static int hex_decode(unsigned char *b, size_t n, const char *s)
{
    if (!s || strlen(s) != 2 * n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return 0;
        b[i] = (unsigned char)v;
    }
    return 1;
}

/* The "train" section: everything besides tensors that resuming needs.
 * positions: [world] every rank's encoded data position (they are equal:
 * every rank walks the same plan; kept per rank so that resuming checks it).
 * keep in sync with qkv_trainer_resume. */
static char *train_state_json(const qkv_trainer *t, double elapsed, const unsigned char *positions)
{
    int world = t->opt.world;
    char *hex = hex_encode(positions, QKV_DATA_POSITION_BYTES);
    cJSON *o = cJSON_CreateObject();
    cJSON *ranks = cJSON_CreateArray();
    char *out = NULL;
    int ok = hex && o && ranks;
    for (int r = 0; ok && r < world; r++) {
        char *h = hex_encode(positions + (size_t)r * QKV_DATA_POSITION_BYTES, QKV_DATA_POSITION_BYTES);
        cJSON *e = h ? cJSON_CreateString(h) : NULL;
        free(h);
        if (!e)
            ok = 0;
        else
            cJSON_AddItemToArray(ranks, e);
    }
    if (ok) {
        cJSON_AddNumberToObject(o, "step", (double)t->step);
        cJSON_AddNumberToObject(o, "tgt_tokens", (double)t->tgt_tokens);
        cJSON_AddNumberToObject(o, "elapsed_s", elapsed);
        cJSON_AddNumberToObject(o, "best_score", isfinite(t->best_score) ? t->best_score : -1e300);
        cJSON_AddNumberToObject(o, "best_step", (double)t->best_step);
        cJSON_AddNumberToObject(o, "bad_validations", t->bad_validations);
        char seed[32];
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)t->opt.seed);
        cJSON_AddStringToObject(o, "seed", seed);
        cJSON_AddStringToObject(o, "data_position", hex);
        cJSON_AddNumberToObject(o, "world", world);
        cJSON_AddNumberToObject(o, "accum", t->opt.accum);
        cJSON_AddStringToObject(o, "precision", qkv_precision_name(t->used));
        cJSON_AddItemToObject(o, "rank_data_positions", ranks);
        ranks = NULL;
        out = cJSON_PrintUnformatted(o);
    }
    cJSON_Delete(ranks);
    cJSON_Delete(o);
    free(hex);
    return out;
}

/* Called on every rank (the data positions are gathered); rank 0 writes. */
qkv_status trainer_save_checkpoint(qkv_trainer *t, const qkv_train_hooks *h, double elapsed)
{
    int world = t->opt.world;
    unsigned char mine[QKV_DATA_POSITION_BYTES];
    qkv_data_position pos;
    qkv_batcher_tell(t->train_b, &pos);
    qkv_data_position_encode(mine, &pos);
    unsigned char *all = malloc((size_t)world * QKV_DATA_POSITION_BYTES);
    if (!all)
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    qkv_status s = QKV_OK;
    if (world > 1)
        s = h->allgather(h->dist_ctx, mine, sizeof mine, all);
    else
        memcpy(all, mine, sizeof mine);
    for (int r = 1; s == QKV_OK && r < world; r++)
        if (memcmp(all + (size_t)r * sizeof mine, all, sizeof mine) != 0)
            s = qkv_fail(QKV_ERR_ARG, "step %lld: rank %d is at another data position than rank 0 (different "
                                      "corpus or batching options?)", (long long)t->step, r);
    if (s != QKV_OK || !t->root) {
        free(all);
        return s;
    }
    char *cfg = NULL, *state = NULL, *path = qkv_path_join(t->dir, "checkpoint.qkv");
    s = qkv_config_to_json(qkv_model_get_config(t->model), &cfg);
    if (s == QKV_OK && !(state = train_state_json(t, elapsed, all)))
        s = qkv_fail(QKV_ERR_NOMEM, "out of memory writing the training state");
    if (s == QKV_OK && !path)
        s = qkv_fail(QKV_ERR_NOMEM, "out of memory");
    if (s == QKV_OK) {
        ckpt_section sec[7];
        int n = 0;
        size_t pb = t->n_params * sizeof(float);
        sec[n++] = (ckpt_section){"config", cfg, strlen(cfg)};
        n = ckpt_add_vocab_sections(sec, n, &t->vocab);
        sec[n++] = (ckpt_section){"params", t->model->params, pb};
        sec[n++] = (ckpt_section){"adam_m", t->m, pb};
        sec[n++] = (ckpt_section){"adam_v", t->v, pb};
        sec[n++] = (ckpt_section){"train", state, strlen(state)};
        s = ckpt_write(path, sec, n);
    }
    free(all);
    free(cfg);
    free(state);
    free(path);
    return s;
}

qkv_status qkv_trainer_resume(qkv_trainer *t, const char *path)
{
    ckpt_file f;
    QKV_TRY(ckpt_read(path, &f));
    qkv_status s = QKV_OK;
    size_t pb = t->n_params * sizeof(float);
    const ckpt_section *ms = ckpt_find(&f, "adam_m"), *vs = ckpt_find(&f, "adam_v"), *ts = ckpt_find(&f, "train");
    const ckpt_section *ps = ckpt_find(&f, "params");
    cJSON *o = NULL;
    if (!ms || !vs || !ts || !ps) {
        s = qkv_fail(QKV_ERR_FORMAT, "%s: not a training checkpoint (needs params, adam_m, adam_v and train)", path);
        goto done;
    }
    if (ms->nbytes != pb || vs->nbytes != pb || ps->nbytes != pb) {
        s = qkv_fail(QKV_ERR_FORMAT, "%s: tensors of %zu/%zu/%zu bytes, the model has %zu", path, ps->nbytes,
                     ms->nbytes, vs->nbytes, pb);
        goto done;
    }
    o = cJSON_ParseWithLength(ts->data, ts->nbytes);
    const cJSON *step = cJSON_GetObjectItemCaseSensitive(o, "step");
    const cJSON *pos = cJSON_GetObjectItemCaseSensitive(o, "data_position");
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(o, "seed");
    qkv_data_position dp;
    unsigned char enc[QKV_DATA_POSITION_BYTES];
    if (!cJSON_IsNumber(step) || !cJSON_IsString(pos) || !cJSON_IsString(seed) ||
        !hex_decode(enc, sizeof enc, pos->valuestring)) {
        s = qkv_fail(QKV_ERR_FORMAT, "%s: section 'train' lacks a valid step, seed or data_position", path);
        goto done;
    }
    if (strtoull(seed->valuestring, NULL, 10) != t->opt.seed) {
        s = qkv_fail(QKV_ERR_CONFIG, "%s: the run used --seed %s, this one %llu: resume with the same seed", path,
                     seed->valuestring, (unsigned long long)t->opt.seed);
        goto done;
    }
    {
        /* a checkpoint without these fields comes from one process */
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(o, "world");
        const cJSON *ac = cJSON_GetObjectItemCaseSensitive(o, "accum");
        int saved_world = cJSON_IsNumber(w) ? w->valueint : 1;
        if (saved_world != t->opt.world || (cJSON_IsNumber(ac) && ac->valueint != t->opt.accum)) {
            s = qkv_fail(QKV_ERR_CONFIG, "%s: the run had %d process(es) with --accum %d, this one %d with --accum %d: "
                                         "resume on the same number of ranks with the same --accum", path,
                         saved_world, cJSON_IsNumber(ac) ? ac->valueint : t->opt.accum, t->opt.world, t->opt.accum);
            goto done;
        }
        const cJSON *rp = cJSON_GetObjectItemCaseSensitive(o, "rank_data_positions");
        const cJSON *mine = cJSON_IsArray(rp) ? cJSON_GetArrayItem(rp, t->opt.rank) : NULL;
        if (mine && (!cJSON_IsString(mine) || !hex_decode(enc, sizeof enc, mine->valuestring))) {
            s = qkv_fail(QKV_ERR_FORMAT, "%s: section 'train': rank %d's data position is not valid", path,
                         t->opt.rank);
            goto done;
        }
    }
    if ((s = qkv_data_position_decode(&dp, enc)) != QKV_OK ||
        (s = qkv_batcher_seek(t->train_b, &dp)) != QKV_OK) {
        qkv_fail_context(s, "%s: cannot restore the data position (same corpus and batching options?)", path);
        goto done;
    }
    ckpt_section_copy(&f, t->model->params, ps); /* sizes checked above */
    ckpt_section_copy(&f, t->m, ms);
    ckpt_section_copy(&f, t->v, vs);
    t->step = (int64_t)step->valuedouble;
    const cJSON *x;
    if ((x = cJSON_GetObjectItemCaseSensitive(o, "tgt_tokens")) && cJSON_IsNumber(x))
        t->tgt_tokens = (int64_t)x->valuedouble;
    if ((x = cJSON_GetObjectItemCaseSensitive(o, "elapsed_s")) && cJSON_IsNumber(x))
        t->elapsed_prev = x->valuedouble;
    if ((x = cJSON_GetObjectItemCaseSensitive(o, "best_score")) && cJSON_IsNumber(x))
        t->best_score = x->valuedouble <= -1e299 ? -INFINITY : x->valuedouble;
    if ((x = cJSON_GetObjectItemCaseSensitive(o, "best_step")) && cJSON_IsNumber(x))
        t->best_step = (int64_t)x->valuedouble;
    if ((x = cJSON_GetObjectItemCaseSensitive(o, "bad_validations")) && cJSON_IsNumber(x))
        t->bad_validations = (int)x->valuedouble;
    /* auto keeps the precision of the run resumed (older checkpoints: fp32) */
    x = cJSON_GetObjectItemCaseSensitive(o, "precision");
    if (t->opt.precision == QKV_PRECISION_AUTO) {
        int bf = cJSON_IsString(x) && !strcmp(x->valuestring, "bf16"), native = qkv_bf16_native(NULL);
        t->used = bf && native ? QKV_PRECISION_BF16 : QKV_PRECISION_FP32;
        t->view.bf16 = t->used == QKV_PRECISION_BF16;
        snprintf(t->why, sizeof t->why, "auto: %s, %s", qkv_precision_name(t->used),
                 bf && !native ? "the resumed run's bf16 has no native products here"
                               : "the precision of the run resumed");
    } else if (cJSON_IsString(x) && strcmp(x->valuestring, qkv_precision_name(t->used))) {
        snprintf(t->why, sizeof t->why, "%s as asked; the run resumed was %s, so this run does not continue it "
                 "bit for bit", qkv_precision_name(t->used), x->valuestring);
    }
done:
    cJSON_Delete(o);
    ckpt_free(&f);
    return s;
}

