/* train/schedule: learning rates at known steps, computed by hand, and the
 * validation messages. */
#include <math.h>
#include <string.h>

#include "base/status.h"
#include "test.h"
#include "train/schedule.h"

/* Relative tolerance for values written out by hand to ~10 digits. */
#define LR_RTOL 1e-9

static void check_lr(const char *file, int line, const qkv_schedule_options *o, int64_t step, double want)
{
    double got = qkv_schedule_lr(o, step);
    double err = fabs(got - want), scale = fabs(want) > 1e-30 ? fabs(want) : 1e-30;
    if (!(err <= LR_RTOL * scale))
        test_fail(file, line, "%s lr(%lld) = %.12g, want %.12g (rel err %.3g > %.1g)", qkv_schedule_kind_name(o->kind),
                  (long long)step, got, want, err / scale, LR_RTOL);
}
#define CHECK_LR(o, step, want) check_lr(__FILE__, __LINE__, (o), (step), (want))

static void test_inverse_sqrt_known_steps(void)
{
    /* The `small` preset's recipe: peak 1e-3 after 400 warmup steps. */
    qkv_schedule_options o = qkv_schedule_default_options();
    o.peak_lr = 1e-3;
    o.warmup_steps = 400;
    CHECK(qkv_schedule_validate(&o) == QKV_OK, "validate: %s", qkv_last_error());
    CHECK_LR(&o, -5, 0.0);
    CHECK_LR(&o, 0, 0.0);
    CHECK_LR(&o, 1, 2.5e-6);   /* 1e-3 / 400 */
    CHECK_LR(&o, 200, 5e-4);   /* half way up */
    CHECK_LR(&o, 399, 9.975e-4);
    CHECK_LR(&o, 400, 1e-3);   /* the peak, exactly at the end of warmup */
    CHECK_LR(&o, 401, 1e-3 * sqrt(400.0 / 401.0));
    CHECK_LR(&o, 1600, 5e-4);  /* sqrt(400/1600) = 1/2 */
    CHECK_LR(&o, 3600, 1e-3 / 3.0);
    CHECK_LR(&o, 40000, 1e-4); /* sqrt(1/100) */
}

static void test_inverse_sqrt_warmup_init(void)
{
    /* fairseq's customary warmup_init_lr 1e-7 with peak 5e-4 over 4000 steps. */
    qkv_schedule_options o = qkv_schedule_default_options();
    o.peak_lr = 5e-4;
    o.warmup_steps = 4000;
    o.warmup_init_lr = 1e-7;
    CHECK(qkv_schedule_validate(&o) == QKV_OK, "validate: %s", qkv_last_error());
    CHECK_LR(&o, 0, 1e-7);
    CHECK_LR(&o, 2000, 2.5005e-4); /* 1e-7 + (5e-4 - 1e-7) / 2 */
    CHECK_LR(&o, 4000, 5e-4);
    CHECK_LR(&o, 16000, 2.5e-4);
}

static void test_inverse_sqrt_matches_paper(void)
{
    /* Eq. 3 of the paper, base model: d_model 512, warmup 4000. */
    int d = 512;
    int64_t w = 4000;
    qkv_schedule_options o = qkv_schedule_default_options();
    o.warmup_steps = w;
    o.peak_lr = qkv_schedule_paper_peak(d, w);
    CHECK(fabs(o.peak_lr - 6.98771242e-4) < 1e-12, "paper peak %.12g, want 6.98771242e-4", o.peak_lr);
    CHECK(qkv_schedule_validate(&o) == QKV_OK, "validate: %s", qkv_last_error());
    const int64_t steps[] = {1, 2, 10, 100, 1000, 3999, 4000, 4001, 10000, 100000, 1000000};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        double s = (double)steps[i];
        double paper = pow(d, -0.5) * fmin(pow(s, -0.5), s * pow((double)w, -1.5));
        CHECK_LR(&o, steps[i], paper);
    }
}

static void test_constant_with_warmup(void)
{
    qkv_schedule_options o = qkv_schedule_default_options();
    o.kind = QKV_LR_CONSTANT;
    o.peak_lr = 2e-3;
    o.warmup_steps = 10;
    CHECK(qkv_schedule_validate(&o) == QKV_OK, "validate: %s", qkv_last_error());
    CHECK_LR(&o, 0, 0.0);
    CHECK_LR(&o, 1, 2e-4);
    CHECK_LR(&o, 5, 1e-3);
    CHECK_LR(&o, 10, 2e-3);
    CHECK_LR(&o, 11, 2e-3);
    CHECK_LR(&o, 1000000, 2e-3);
    /* No warmup: the peak from the start. */
    o.warmup_steps = 0;
    CHECK(qkv_schedule_validate(&o) == QKV_OK, "validate without warmup: %s", qkv_last_error());
    CHECK_LR(&o, 0, 2e-3);
    CHECK_LR(&o, 1, 2e-3);
}

static void test_cosine_with_warmup(void)
{
    qkv_schedule_options o = qkv_schedule_default_options();
    o.kind = QKV_LR_COSINE;
    o.peak_lr = 1e-3;
    o.min_lr = 1e-5;
    o.warmup_steps = 100;
    o.total_steps = 1100;
    CHECK(qkv_schedule_validate(&o) == QKV_OK, "validate: %s", qkv_last_error());
    CHECK_LR(&o, 50, 5e-4);
    CHECK_LR(&o, 100, 1e-3);
    /* A quarter of the way down: cos(pi/4) = 0.70710678118654752. */
    CHECK_LR(&o, 350, 1e-5 + 0.99e-3 * 0.5 * (1 + 0.70710678118654752));
    CHECK_LR(&o, 600, 5.05e-4); /* half way: (peak + min) / 2 */
    CHECK_LR(&o, 1100, 1e-5);
    CHECK_LR(&o, 5000, 1e-5);
    /* Without warmup the curve starts at the peak. */
    o.warmup_steps = 0;
    o.total_steps = 1000;
    CHECK(qkv_schedule_validate(&o) == QKV_OK, "validate without warmup: %s", qkv_last_error());
    CHECK_LR(&o, 0, 1e-3);
    CHECK_LR(&o, 500, 5.05e-4);
}

static void test_shape_monotone(void)
{
    /* Every kind rises during warmup and never rises after it. */
    for (int k = 0; k < 3; k++) {
        qkv_schedule_options o = qkv_schedule_default_options();
        o.kind = (qkv_lr_kind)k;
        o.warmup_steps = 37;
        o.total_steps = 500;
        o.min_lr = 1e-6;
        o.warmup_init_lr = 1e-6;
        CHECK(qkv_schedule_validate(&o) == QKV_OK, "validate %d: %s", k, qkv_last_error());
        double prev = qkv_schedule_lr(&o, 0);
        for (int64_t s = 1; s <= 2000; s++) {
            double lr = qkv_schedule_lr(&o, s);
            if (s <= o.warmup_steps)
                CHECK(lr > prev, "%s: lr(%lld) = %g not above lr(%lld) = %g during warmup", qkv_schedule_kind_name(o.kind),
                      (long long)s, lr, (long long)s - 1, prev);
            else
                CHECK(lr <= prev, "%s: lr(%lld) = %g above lr(%lld) = %g after warmup", qkv_schedule_kind_name(o.kind),
                      (long long)s, lr, (long long)s - 1, prev);
            CHECK(lr <= o.peak_lr * (1 + 1e-12), "%s: lr(%lld) = %g above the peak", qkv_schedule_kind_name(o.kind),
                  (long long)s, lr);
            prev = lr;
        }
    }
}

/* Expects validation to fail naming `field`. */
static void check_invalid(const char *file, int line, const qkv_schedule_options *o, const char *field)
{
    qkv_status s = qkv_schedule_validate(o);
    if (s != QKV_ERR_CONFIG)
        test_fail(file, line, "expected QKV_ERR_CONFIG naming '%s', got status %d", field, s);
    else if (!strstr(qkv_last_error(), field))
        test_fail(file, line, "message does not name '%s': %s", field, qkv_last_error());
}
#define CHECK_INVALID(o, field) check_invalid(__FILE__, __LINE__, (o), (field))

static void test_validation(void)
{
    qkv_schedule_options base = qkv_schedule_default_options(), o;
    CHECK(qkv_schedule_validate(&base) == QKV_OK, "defaults invalid: %s", qkv_last_error());

    o = base, o.peak_lr = 0;
    CHECK_INVALID(&o, "peak_lr");
    o = base, o.peak_lr = NAN;
    CHECK_INVALID(&o, "peak_lr");
    o = base, o.peak_lr = INFINITY;
    CHECK_INVALID(&o, "peak_lr");
    o = base, o.warmup_steps = -1;
    CHECK_INVALID(&o, "warmup_steps");
    o = base, o.warmup_steps = 0; /* inverse-sqrt needs warmup */
    CHECK_INVALID(&o, "warmup_steps");
    o = base, o.warmup_init_lr = -1e-7;
    CHECK_INVALID(&o, "warmup_init_lr");
    o = base, o.warmup_init_lr = 2 * base.peak_lr;
    CHECK_INVALID(&o, "warmup_init_lr");
    o = base, o.kind = (qkv_lr_kind)17;
    CHECK_INVALID(&o, "kind");

    o = base, o.kind = QKV_LR_COSINE, o.total_steps = base.warmup_steps;
    CHECK_INVALID(&o, "total_steps");
    o = base, o.kind = QKV_LR_COSINE, o.total_steps = base.warmup_steps + 1, o.min_lr = 1.0;
    CHECK_INVALID(&o, "min_lr");
    o = base, o.kind = QKV_LR_COSINE, o.total_steps = base.warmup_steps + 1, o.min_lr = -1.0;
    CHECK_INVALID(&o, "min_lr");
    /* Cosine-only fields do not matter to the other kinds. */
    o = base, o.kind = QKV_LR_CONSTANT, o.min_lr = -1.0, o.total_steps = -3;
    CHECK(qkv_schedule_validate(&o) == QKV_OK, "constant rejected unused cosine fields: %s", qkv_last_error());
}

static void test_kind_names(void)
{
    const struct {
        const char *name;
        qkv_lr_kind kind;
    } ok[] = {{"inverse-sqrt", QKV_LR_INVERSE_SQRT}, {"inverse_sqrt", QKV_LR_INVERSE_SQRT}, {"noam", QKV_LR_INVERSE_SQRT},
              {"rsqrt", QKV_LR_INVERSE_SQRT},        {"constant", QKV_LR_CONSTANT},          {"cosine", QKV_LR_COSINE}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        qkv_lr_kind k = (qkv_lr_kind)-1;
        CHECK(qkv_schedule_parse_kind(ok[i].name, &k) == QKV_OK && k == ok[i].kind, "'%s' parsed as %d, want %d",
              ok[i].name, (int)k, (int)ok[i].kind);
    }
    CHECK(!strcmp(qkv_schedule_kind_name(QKV_LR_INVERSE_SQRT), "inverse-sqrt"), "canonical name '%s'",
          qkv_schedule_kind_name(QKV_LR_INVERSE_SQRT));
    CHECK(!strcmp(qkv_schedule_kind_name(QKV_LR_COSINE), "cosine"), "canonical name '%s'",
          qkv_schedule_kind_name(QKV_LR_COSINE));
    qkv_lr_kind k;
    CHECK(qkv_schedule_parse_kind("linear", &k) == QKV_ERR_CONFIG, "'linear' accepted");
    CHECK(strstr(qkv_last_error(), "'linear'") && strstr(qkv_last_error(), "cosine"),
          "message lacks the name or the choices: %s", qkv_last_error());
    CHECK(qkv_schedule_parse_kind(NULL, &k) == QKV_ERR_CONFIG, "NULL accepted");
}

static const test_case cases[] = {
    TEST(test_inverse_sqrt_known_steps), TEST(test_inverse_sqrt_warmup_init), TEST(test_inverse_sqrt_matches_paper),
    TEST(test_constant_with_warmup),     TEST(test_cosine_with_warmup),       TEST(test_shape_monotone),
    TEST(test_validation),               TEST(test_kind_names),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
