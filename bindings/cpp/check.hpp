/*
 * What the C++ header's tests share: each check prints "ok: ..." or "FAILED: ..." and counts
 * the failures; main() ends with the count.
 */
#ifndef SCARDMANAGE_CHECK_HPP
#define SCARDMANAGE_CHECK_HPP

#include <cstdio>

#include "scardmanage.hpp"

static int g_failures = 0;

static void Check(bool ok, const char *what)
{
    std::printf("%s: %s\n", ok ? "ok" : "FAILED", what);
    if (!ok)
        g_failures++;
}

static void CheckHr(scm_hresult hr, scm_hresult expected, const char *what)
{
    if (hr != expected)
        std::printf("  0x%08lX %s, expected 0x%08lX\n", (unsigned long)(uint32_t)hr, scm::ErrorMessage(hr),
                    (unsigned long)(uint32_t)expected);
    Check(hr == expected, what);
}

/* main()'s end: the summary line .ci/test-bindings looks for, and the exit status. */
static int Finish(const char *test)
{
    if (g_failures != 0) {
        std::printf("%s: %d checks failed\n", test, g_failures);
        return 1;
    }
    std::printf("%s: all checks passed\n", test);
    return 0;
}

#endif /* SCARDMANAGE_CHECK_HPP */
