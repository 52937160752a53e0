/*
 * scm_lock blocks a second manager, in another thread, until the first unlocks; the first
 * manager keeps working meanwhile (a call blocked in PC/SC, or in the bridge under Wine, blocks
 * only its caller).
 */
#include <stdio.h>

#include "check.h"

/* How long the first manager holds the lock; the second must have waited at least MIN_WAIT (the
   rest is room for the thread to start on a loaded machine). */
#define HOLD_MS 1000
#define MIN_WAIT_MS 500

struct waiter {
    scm_manage *m;
    scm_hresult hr;
    double started, locked;
};

static void second_lock(void *arg)
{
    struct waiter *w = arg;
    w->started = now_ms();
    w->hr = scm_lock(w->m);
    w->locked = now_ms();
}

int main(void)
{
    const char *reader = lab_reader();
    scm_manage *first, *second;
    struct waiter w;
    struct thread t;
    double unlocked;
    begin("lock blocks a second manager until unlock");
    if (reader == NULL || (first = attached(reader)) == NULL || (second = attached(reader)) == NULL)
        return finish();
    expect_hr("unlock without lock", scm_unlock(first, SCM_LEAVE_CARD), SCM_SCARD_E_NOT_TRANSACTED);
    expect_hr("first lock", scm_lock(first), SCM_S_OK);
    expect_hr("first lock again", scm_lock(first), SCM_S_OK);
    w.m = second;
    w.hr = SCM_E_FAIL;
    if (!expect(thread_start(&t, second_lock, &w), "no thread"))
        return finish();
    sleep_ms(HOLD_MS);
    /* The holder is not stalled by the waiter. */
    echo_ok(first, "first, locked");
    expect_hr("unlock disposition 7", scm_unlock(first, 7), SCM_E_INVALIDARG);
    unlocked = now_ms();
    expect_hr("first unlock", scm_unlock(first, SCM_LEAVE_CARD), SCM_S_OK);
    thread_join(&t);
    expect_hr("second lock", w.hr, SCM_S_OK);
    expect(w.locked >= unlocked, "the second lock returned %.0f ms before the unlock", unlocked - w.locked);
    expect(w.locked - w.started >= MIN_WAIT_MS, "the second lock waited only %.0f ms", w.locked - w.started);
    echo_ok(second, "second");
    expect_hr("second unlock", scm_unlock(second, SCM_LEAVE_CARD), SCM_S_OK);
    expect_hr("first unlock again", scm_unlock(first, SCM_LEAVE_CARD), SCM_SCARD_E_NOT_TRANSACTED);
    pass("the second manager's scm_lock waited %.0f ms (first held it %d ms), returned %.0f ms after the unlock; "
         "unlock without lock -> %s",
         w.locked - w.started, HOLD_MS, w.locked - unlocked, hex(SCM_SCARD_E_NOT_TRANSACTED));
    scm_release(second);
    scm_release(first);
    return finish();
}
