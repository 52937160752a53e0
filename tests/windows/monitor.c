/*
 * The monitor from C: the initial state first, a card inserted and removed, a card in and out
 * between two calls reported as both events, a name that does not fit keeping its event, and
 * cancel and release from another thread ending a blocked scm_monitor_next. Needs
 * `scm-lab run --pairs 2` (reader 0 holds a card; reader 1 is driven through the control
 * channel).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define WAIT_MS 10000
/* How soon a cancel or a release must end a blocked call on a loaded machine (measured: a few
   milliseconds natively). */
#define PROMPT_MS 1000

/* The next event of `reader` (others skipped) within WAIT_MS; 0 when none came. */
static int next_of(scm_monitor *mon, const char *reader, uint32_t *event)
{
    double deadline = now_ms() + WAIT_MS;
    char name[256];
    while (now_ms() < deadline) {
        size_t len = sizeof name;
        scm_hresult hr = scm_monitor_next(mon, 200, event, name, &len);
        if (hr == SCM_SCARD_E_TIMEOUT)
            continue;
        if (!expect_hr("scm_monitor_next", hr, SCM_S_OK))
            return 0;
        if (strcmp(name, reader) == 0)
            return 1;
    }
    return expect(0, "no event for %s within %d ms", reader, WAIT_MS);
}

static void initial_state(const char *with_card)
{
    scm_monitor *mon;
    char count[16], name[256];
    int readers = 0, cards = 0, ours = 0;
    uint32_t event, previous = 0;
    scm_hresult hr;
    begin("the monitor reports the readers and cards already there first");
    if (!control("readers", count, sizeof count) || !expect_hr("create", scm_monitor_create(&mon), SCM_S_OK))
        return;
    for (;;) {
        size_t len = sizeof name;
        hr = scm_monitor_next(mon, 0, &event, name, &len);
        if (hr != SCM_S_OK)
            break;
        readers += event == SCM_EVENT_READER_ADDED;
        cards += event == SCM_EVENT_CARD_INSERTED;
        if (strcmp(name, with_card) == 0 && event == SCM_EVENT_CARD_INSERTED)
            ours = previous == SCM_EVENT_READER_ADDED;
        previous = event;
    }
    expect_hr("then nothing", hr, SCM_SCARD_E_TIMEOUT);
    expect(readers == atoi(count), "%d readers added, the lab has %s", readers, count);
    expect(ours, "%s: added, then its card inserted", with_card);
    expect_hr("release", scm_monitor_release(mon), SCM_S_OK);
    expect_hr("release again", scm_monitor_release(mon), SCM_E_HANDLE);
    pass("%d readers added, %d cards inserted, \"%s\" added then its card; then %s", readers, cards, with_card,
         hex(hr));
}

static void insert_and_remove(void)
{
    scm_monitor *mon;
    char reader[256], name[256];
    uint32_t first = 0, second = 0, third = 0, fourth = 0;
    size_t needed = 0, len;
    begin("insertion and removal reported, also between two calls, and a short buffer keeps its event");
    if (!control("reader 1", reader, sizeof reader) || !control("remove 1", NULL, 0) ||
        !expect_hr("create", scm_monitor_create(&mon), SCM_S_OK))
        return;
    while (scm_monitor_next(mon, 0, &first, NULL, NULL) == SCM_S_OK)
        ;
    if (control("insert 1", NULL, 0) && next_of(mon, reader, &first))
        expect(first == SCM_EVENT_CARD_INSERTED, "inserted: event %u", (unsigned)first);
    if (control("remove 1", NULL, 0) && next_of(mon, reader, &second))
        expect(second == SCM_EVENT_CARD_REMOVED, "removed: event %u", (unsigned)second);
    /* In and out while the monitor is not asked: both come out, in order. */
    if (control("insert 1", NULL, 0) && control("remove 1", NULL, 0)) {
        /* The first of them with a buffer too small: the size, and the event stays. */
        for (;;) {
            needed = 3;
            expect_hr("3-byte buffer", scm_monitor_next(mon, WAIT_MS, &third, name, &needed),
                      SCM_SCARD_E_INSUFFICIENT_BUFFER);
            len = sizeof name;
            if (!expect_hr("then", scm_monitor_next(mon, 0, &third, name, &len), SCM_S_OK) || strcmp(name, reader) == 0)
                break;
        }
        expect(len == needed && len == strlen(reader) + 1, "size %u, then %u bytes", (unsigned)needed,
               (unsigned)len);
        expect(third == SCM_EVENT_CARD_INSERTED, "in between calls: first event %u", (unsigned)third);
        if (next_of(mon, reader, &fourth))
            expect(fourth == SCM_EVENT_CARD_REMOVED, "in between calls: second event %u", (unsigned)fourth);
    }
    scm_monitor_release(mon);
    pass("\"%s\": inserted %u, removed %u; in and out between two calls: %u then %u; a 3-byte buffer -> %s, "
         "size %u",
         reader, (unsigned)first, (unsigned)second, (unsigned)third, (unsigned)fourth,
         hex(SCM_SCARD_E_INSUFFICIENT_BUFFER), (unsigned)needed);
}

struct blocked {
    scm_monitor *mon;
    scm_hresult hr;
    double ended;
};

static void wait_for_ever(void *arg)
{
    struct blocked *b = arg;
    uint32_t event;
    do
        b->hr = scm_monitor_next(b->mon, SCM_WAIT_INFINITE, &event, NULL, NULL);
    while (b->hr == SCM_S_OK);
    b->ended = now_ms();
}

/* `end` (cancel or release) from this thread ends a next blocked in another one with `want`. */
static void ends_a_blocked_next(const char *scenario, scm_hresult (*end)(scm_monitor *), scm_hresult want)
{
    struct blocked b;
    struct thread t;
    uint32_t event;
    double started;
    begin(scenario);
    if (!expect_hr("create", scm_monitor_create(&b.mon), SCM_S_OK))
        return;
    while (scm_monitor_next(b.mon, 0, &event, NULL, NULL) == SCM_S_OK)
        ;
    b.hr = SCM_E_FAIL;
    if (!expect(thread_start(&t, wait_for_ever, &b), "no thread"))
        return;
    sleep_ms(300);
    started = now_ms();
    expect_hr("end", end(b.mon), SCM_S_OK);
    thread_join(&t);
    expect_hr("the blocked next", b.hr, want);
    expect(b.ended - started < PROMPT_MS, "ended after %.0f ms", b.ended - started);
    if (want == SCM_SCARD_E_CANCELLED)
        expect_hr("release", scm_monitor_release(b.mon), SCM_S_OK);
    pass("the blocked scm_monitor_next returned %s %.0f ms after", hex(b.hr), b.ended - started);
}

int main(void)
{
    const char *reader = lab_reader();
    if (reader == NULL)
        return finish();
    initial_state(reader);
    insert_and_remove();
    ends_a_blocked_next("cancel from another thread ends a blocked next", scm_monitor_cancel, SCM_SCARD_E_CANCELLED);
    ends_a_blocked_next("release from another thread ends a blocked next", scm_monitor_release, SCM_E_HANDLE);
    return finish();
}
