#include "train/schedule.h"

#include <math.h>
#include <string.h>

#include "base/status.h"

qkv_schedule_options qkv_schedule_default_options(void)
{
    qkv_schedule_options o = {
        .kind = QKV_LR_INVERSE_SQRT,
        .peak_lr = 1e-3,
        .warmup_steps = 4000,
        .warmup_init_lr = 0.0,
        .min_lr = 0.0,
        .total_steps = 0,
    };
    return o;
}

qkv_status qkv_schedule_validate(const qkv_schedule_options *o)
{
    const char *kn = qkv_schedule_kind_name(o->kind);
    if (!kn[0])
        return qkv_fail(QKV_ERR_CONFIG, "schedule: field 'kind' is %d; expected inverse-sqrt, constant or cosine",
                        (int)o->kind);
    if (!(isfinite(o->peak_lr) && o->peak_lr > 0))
        return qkv_fail(QKV_ERR_CONFIG, "schedule: field 'peak_lr' is %g; expected a finite number > 0", o->peak_lr);
    if (o->warmup_steps < 0)
        return qkv_fail(QKV_ERR_CONFIG, "schedule: field 'warmup_steps' is %lld; expected >= 0",
                        (long long)o->warmup_steps);
    if (o->kind == QKV_LR_INVERSE_SQRT && o->warmup_steps < 1)
        return qkv_fail(QKV_ERR_CONFIG,
                        "schedule: field 'warmup_steps' is %lld; inverse-sqrt needs >= 1 "
                        "(its decay peak * sqrt(warmup / step) is 0 without warmup)",
                        (long long)o->warmup_steps);
    if (!(isfinite(o->warmup_init_lr) && o->warmup_init_lr >= 0 && o->warmup_init_lr <= o->peak_lr))
        return qkv_fail(QKV_ERR_CONFIG, "schedule: field 'warmup_init_lr' is %g; expected a number in [0, peak_lr = %g]",
                        o->warmup_init_lr, o->peak_lr);
    if (o->kind == QKV_LR_COSINE) {
        if (!(isfinite(o->min_lr) && o->min_lr >= 0 && o->min_lr <= o->peak_lr))
            return qkv_fail(QKV_ERR_CONFIG, "schedule: field 'min_lr' is %g; expected a number in [0, peak_lr = %g]",
                            o->min_lr, o->peak_lr);
        if (o->total_steps <= o->warmup_steps)
            return qkv_fail(QKV_ERR_CONFIG,
                            "schedule: field 'total_steps' is %lld; cosine needs more than warmup_steps = %lld",
                            (long long)o->total_steps, (long long)o->warmup_steps);
    }
    return QKV_OK;
}

double qkv_schedule_lr(const qkv_schedule_options *o, int64_t step)
{
    double peak = o->peak_lr;
    int64_t w = o->warmup_steps;
    if (step < 0)
        step = 0;
    if (step <= w) /* w > 0 here unless step == 0 == w */
        return w == 0 ? peak : o->warmup_init_lr + (peak - o->warmup_init_lr) * ((double)step / (double)w);
    switch (o->kind) {
    case QKV_LR_INVERSE_SQRT: return peak * sqrt((double)w / (double)step);
    case QKV_LR_CONSTANT: return peak;
    case QKV_LR_COSINE: {
        if (step >= o->total_steps)
            return o->min_lr;
        double t = (double)(step - w) / (double)(o->total_steps - w);
        return o->min_lr + (peak - o->min_lr) * 0.5 * (1.0 + cos(M_PI * t));
    }
    }
    return peak; /* unreachable after validation */
}

double qkv_schedule_paper_peak(int d_model, int64_t warmup_steps)
{
    return 1.0 / sqrt((double)d_model) / sqrt((double)warmup_steps);
}

static const struct {
    const char *name;
    qkv_lr_kind kind;
} kind_names[] = {
    /* The first name of each kind is its canonical one. */
    {"inverse-sqrt", QKV_LR_INVERSE_SQRT}, {"inverse_sqrt", QKV_LR_INVERSE_SQRT}, {"invsqrt", QKV_LR_INVERSE_SQRT},
    {"rsqrt", QKV_LR_INVERSE_SQRT},        {"noam", QKV_LR_INVERSE_SQRT},         {"constant", QKV_LR_CONSTANT},
    {"cosine", QKV_LR_COSINE},
};

qkv_status qkv_schedule_parse_kind(const char *name, qkv_lr_kind *kind)
{
    for (size_t i = 0; i < sizeof kind_names / sizeof kind_names[0]; i++)
        if (name && !strcmp(name, kind_names[i].name)) {
            *kind = kind_names[i].kind;
            return QKV_OK;
        }
    return qkv_fail(QKV_ERR_CONFIG, "schedule: unknown kind '%s'; expected inverse-sqrt, constant or cosine",
                    name ? name : "(null)");
}

const char *qkv_schedule_kind_name(qkv_lr_kind kind)
{
    for (size_t i = 0; i < sizeof kind_names / sizeof kind_names[0]; i++)
        if (kind_names[i].kind == kind)
            return kind_names[i].name;
    return "";
}
