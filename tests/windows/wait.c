/*
 * Waits, attributes and control from C: a removal seen by a blocked wait, an insertion made
 * while nobody waited reported by the next wait, a timeout, a cancel from another thread; the
 * ATR and name attributes (a non-ASCII name included: UTF-8 from WinSCard's wide form under
 * Wine), an attribute the driver does not answer, and a control code in its portable form, which
 * under Wine must reach the bridge as Windows' SCARD_CTL_CODE(3400) (the lab's `last-control`
 * shows what pcscd got after the bridge's translation). Needs `scm-lab run --pairs 2
 * --friendly 1=<non-ASCII name>`.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"

/* Room for a cancel or a release to end a wait on a loaded machine (under Wine: two relays). */
#define ENDS_WITHIN_MS 1000
#define SEEN_MS 10000

struct waiter {
    scm_manage *m;
    uint32_t timeout, state;
    scm_hresult hr;
    double returned;
};

static void wait_in_thread(void *arg)
{
    struct waiter *w = arg;
    w->hr = scm_wait_for_change(w->m, w->timeout, &w->state);
    w->returned = now_ms();
}

static void waits(const char *reader)
{
    scm_manage *m;
    struct waiter w;
    struct thread t;
    uint32_t state = 99;
    double started, cancelled;
    begin("waits: removal, insertion in between, timeout, cancel");
    if (reader == NULL || (m = attached(reader)) == NULL)
        return;
    started = now_ms();
    expect_hr("no change within 200 ms", scm_wait_for_change(m, 200, &state), SCM_SCARD_E_TIMEOUT);
    expect(now_ms() - started >= 199 && state == 99, "a timeout after %.0f ms, state %u", now_ms() - started,
           (unsigned)state);
    w.m = m;
    w.timeout = SEEN_MS;
    w.state = 99;
    if (!expect(thread_start(&t, wait_in_thread, &w), "no thread"))
        return;
    sleep_ms(300);
    control("remove 0", NULL, 0);
    thread_join(&t);
    expect_hr("wait for the removal", w.hr, SCM_S_OK);
    expect(w.state == SCM_STATE_ABSENT, "state %u after the removal", (unsigned)w.state);
    /* The card goes in while nobody waits: the next wait reports it at once. */
    control("insert 0", NULL, 0);
    started = now_ms();
    expect_hr("wait after an insertion", scm_wait_for_change(m, SEEN_MS, &state), SCM_S_OK);
    expect(state == SCM_STATE_PRESENT && now_ms() - started < 2000, "state %u after %.0f ms", (unsigned)state,
           now_ms() - started);
    expect_hr("reconnect", scm_reconnect(m), SCM_S_OK);
    echo_ok(m, "after the wait");
    /* Cancelled from here while the thread waits without a limit. */
    w.timeout = SCM_WAIT_INFINITE;
    w.state = 99;
    if (!expect(thread_start(&t, wait_in_thread, &w), "no thread"))
        return;
    sleep_ms(300);
    cancelled = now_ms();
    expect_hr("scm_cancel", scm_cancel(m), SCM_S_OK);
    thread_join(&t);
    expect_hr("cancelled wait", w.hr, SCM_SCARD_E_CANCELLED);
    expect(w.returned - cancelled < ENDS_WITHIN_MS && w.state == 99, "the wait ended %.0f ms after the cancel",
           w.returned - cancelled);
    expect_hr("wait on NULL", scm_wait_for_change(NULL, 0, &state), SCM_E_POINTER);
    expect_hr("cancel NULL", scm_cancel(NULL), SCM_E_POINTER);
    pass("timeout -> %s; removal seen (state %u); an insertion in between reported at once (state %u); "
         "cancel ended a wait in %.0f ms -> %s",
         hex(SCM_SCARD_E_TIMEOUT), (unsigned)SCM_STATE_ABSENT, (unsigned)state, w.returned - cancelled, hex(w.hr));
    scm_release(m);
}

static int attribute_is(scm_manage *m, uint32_t attribute, const uint8_t *want, size_t want_len)
{
    uint8_t value[300];
    size_t len = 0;
    if (!expect_hr("size query", scm_get_attrib(m, attribute, NULL, &len), SCM_S_OK) ||
        !expect(len == want_len, "attribute 0x%08X: %u bytes, want %u", (unsigned)attribute, (unsigned)len,
                (unsigned)want_len))
        return 0;
    len = sizeof value;
    return expect_hr("scm_get_attrib", scm_get_attrib(m, attribute, value, &len), SCM_S_OK) &&
           expect(len == want_len && memcmp(value, want, len) == 0, "attribute 0x%08X differs", (unsigned)attribute);
}

static void attributes_and_control(const char *reader)
{
    static const uint8_t DEFAULT_ATR[] = {0x3B, 0x80, 0x01, 0x81};
    char name[256], last[64] = "";
    int index;
    uint8_t out[64];
    size_t len = sizeof out;
    uint32_t code = 0;
    scm_manage *m, *other;
    begin("attributes and control");
    if (reader == NULL || (m = attached(reader)) == NULL || !lab_non_ascii_reader(&index, name, sizeof name))
        return;
    attribute_is(m, SCM_ATTR_ATR_STRING, DEFAULT_ATR, sizeof DEFAULT_ATR);
    attribute_is(m, SCM_ATTR_DEVICE_FRIENDLY_NAME, (const uint8_t *)reader, strlen(reader) + 1);
    attribute_is(m, SCM_ATTR_DEVICE_SYSTEM_NAME, (const uint8_t *)reader, strlen(reader) + 1);
    expect_hr("vendor name", scm_get_attrib(m, SCM_ATTR_VENDOR_NAME, out, &len), SCM_SCARD_E_UNSUPPORTED_FEATURE);
    /* An empty reader with a non-ASCII name: a direct connection, the name in UTF-8. */
    other = attached(name);
    if (other != NULL) {
        attribute_is(other, SCM_ATTR_DEVICE_FRIENDLY_NAME, (const uint8_t *)name, strlen(name) + 1);
        len = sizeof out;
        expect_hr("ATR of an empty reader", scm_get_attrib(other, SCM_ATTR_ATR_STRING, out, &len),
                  SCM_SCARD_E_NO_SMARTCARD);
        scm_release(other);
    }
    len = sizeof out;
    expect_hr("control 3400", scm_control(m, 3400, NULL, 0, out, &len), SCM_SCARD_E_UNSUPPORTED_FEATURE);
    if (control("last-control", last, sizeof last)) {
#ifdef _WIN32
        /* The library sent 0x00313520 (Windows' SCARD_CTL_CODE(3400)); the bridge made it pcsc-lite's. */
        expect(strcmp(last, "0x42000D48") == 0, "the bridge relayed control code %s", last);
#else
        expect(strcmp(last, "none") == 0, "no bridge, yet a control code was relayed: %s", last);
#endif
    }
    expect_hr("feature VERIFY_PIN_DIRECT", scm_get_feature(m, SCM_FEATURE_VERIFY_PIN_DIRECT, &code),
              SCM_SCARD_E_UNSUPPORTED_FEATURE);
    pass("ATR and names answered (\"%s\" in UTF-8), vendor name -> %s, control 3400 -> %s (relayed as %s), "
         "feature 6 -> %s",
         spell(name), hex(SCM_SCARD_E_UNSUPPORTED_FEATURE), hex(SCM_SCARD_E_UNSUPPORTED_FEATURE), last,
         hex(SCM_SCARD_E_UNSUPPORTED_FEATURE));
    scm_release(m);
}

int main(void)
{
    const char *reader = lab_reader();
    waits(reader);
    attributes_and_control(reader);
    return finish();
}
