/* The explorer in headless Chromium: runs scripts/browser-test (Selenium in
 * its own venv, Debian's chromium and chromium-driver, installed on demand)
 * against a running ./qkv serve. Skipped, with the reason printed, when
 * chromium or Selenium cannot be installed, and in the sanitizer pass (the
 * browser test exercises ./qkv, built once, not this binary). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "test.h"

static void test_browser_explorer(void)
{
#if defined(__SANITIZE_ADDRESS__)
    printf("skip test_browser: the browser test runs in the optimised pass only\n");
    return;
#else
    char *out = NULL;
    int rc = test_run("scripts/browser-test 2>&1", &out);
    if (out)
        fputs(out, stdout);
    if (rc == 77) {
        printf("skip test_browser: see the reason above\n");
    } else {
        CHECK(rc == 0, "scripts/browser-test exited with %d (its FAIL lines above say what differed)", rc);
    }
    free(out);
#endif
}

static const test_case cases[] = {TEST(test_browser_explorer)};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
