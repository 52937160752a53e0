/*
 * Recovery by scm_reconnect, as in tests/api.rs and tests/service_restart.rs: a reset by another
 * connection (the program's own), the card removed and put back, pcscd killed and started
 * again. Uses reader 0 and the control channel; the service restart comes last.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static void state_is(scm_manage *m, uint32_t want_state, uint32_t want_protocol)
{
    uint32_t state = 99, protocol = 99;
    expect_hr("scm_status", scm_status(m, &state, &protocol), SCM_S_OK);
    expect(state == want_state && protocol == want_protocol, "state %u protocol %u, want %u %u", (unsigned)state,
           (unsigned)protocol, (unsigned)want_state, (unsigned)want_protocol);
}

static scm_hresult transmit_echo(scm_manage *m)
{
    uint8_t apdu[16], response[16];
    size_t len = sizeof response;
    return scm_transmit(m, apdu, echo_apdu("x", apdu), response, &len);
}

static void reset_by_another_connection(scm_manage *m, const char *reader)
{
    struct raw_conn other;
    unsigned long apdus, resets0 = 0, resets1 = 0, resets2 = 0, off0 = 0, off1 = 0, off2 = 0;
    scm_hresult after_reset;
    int32_t rv;
    begin("reset by another connection");
    echo_ok(m, "before");
    rv = raw_connect(&other, reader);
    if (!expect(rv == 0, "the program's own SCardConnect: %s", hex(rv)))
        return;
    lab_counters(0, &apdus, &resets0, &off0);
    rv = raw_reset(&other);
    expect(rv == 0, "SCardReconnect(RESET): %s", hex(rv));
    lab_counters(0, &apdus, &resets1, &off1);
    expect(resets1 + off1 > resets0 + off0, "the card was not reset");
    after_reset = transmit_echo(m);
    expect_hr("transmit after the reset", after_reset, SCM_SCARD_W_RESET_CARD);
    expect_hr("scm_reconnect", scm_reconnect(m), SCM_S_OK);
    state_is(m, SCM_STATE_SPECIFIC, SCM_PROTOCOL_T1);
    echo_ok(m, "after");
    lab_counters(0, &apdus, &resets2, &off2);
    expect(resets2 == resets1 && off2 == off1, "scm_reconnect reset the card");
    raw_close(&other);
    pass("own SCardReconnect(RESET): card resets %lu -> %lu; transmit -> %s (%s); scm_reconnect -> %s, "
         "state %d protocol %d, ECHO ok, card left alone",
         resets0, resets1, hex(after_reset), scm_error_message(after_reset), hex(SCM_S_OK), SCM_STATE_SPECIFIC,
         SCM_PROTOCOL_T1);
}

static void card_removed_and_reinserted(scm_manage *m)
{
    scm_hresult removed, early;
    begin("card removed and re-inserted");
    echo_ok(m, "before");
    if (!control("remove 0", NULL, 0))
        return;
    removed = transmit_echo(m);
    expect(removed == SCM_SCARD_W_REMOVED_CARD || removed == SCM_SCARD_E_NO_SMARTCARD,
           "transmit with the card out: %s (%s), want %s or %s", hex(removed), scm_error_message(removed),
           hex(SCM_SCARD_W_REMOVED_CARD), hex(SCM_SCARD_E_NO_SMARTCARD));
    early = scm_reconnect(m);
    expect_hr("scm_reconnect with no card", early, SCM_SCARD_E_NO_SMARTCARD);
    state_is(m, SCM_STATE_ABSENT, SCM_PROTOCOL_UNDEFINED);
    if (!control("insert 0", NULL, 0))
        return;
    expect_hr("scm_reconnect", scm_reconnect(m), SCM_S_OK);
    state_is(m, SCM_STATE_SPECIFIC, SCM_PROTOCOL_T1);
    echo_ok(m, "after");
    pass("card out: transmit -> %s (%s), scm_reconnect -> %s, status %d/%d; card in: scm_reconnect -> %s, "
         "state %d protocol %d, ECHO ok",
         hex(removed), scm_error_message(removed), hex(early), SCM_STATE_ABSENT, SCM_PROTOCOL_UNDEFINED,
         hex(SCM_S_OK), SCM_STATE_SPECIFIC, SCM_PROTOCOL_T1);
}

static void service_killed_and_restarted(scm_manage *m, const char *reader)
{
    scm_hresult down_transmit, down_status, down_reconnect, down_list;
    uint32_t state, protocol;
    size_t len = 0;
    char *list = NULL;
    double started, took;
    begin("pcscd killed and restarted");
    echo_ok(m, "before");
    if (!control("kill", NULL, 0))
        return;
    started = now_ms();
    down_transmit = transmit_echo(m);
    down_status = scm_status(m, &state, &protocol);
    down_reconnect = scm_reconnect(m);
    down_list = scm_list_readers(NULL, &len);
    took = now_ms() - started;
    /* As tests/service_faults.rs asserts on Linux (RELIABILITY.md): with no call in flight when
       the daemon died, every call that asks PC/SC gets NO_SERVICE, within 500 ms. */
    expect_hr("transmit with pcscd dead", down_transmit, SCM_SCARD_E_NO_SERVICE);
    expect_hr("scm_status with pcscd dead", down_status, SCM_SCARD_E_NO_SERVICE);
    expect_hr("scm_reconnect with pcscd dead", down_reconnect, SCM_SCARD_E_NO_SERVICE);
    expect_hr("scm_list_readers with pcscd dead", down_list, SCM_SCARD_E_NO_SERVICE);
    expect(took < 500, "the four calls took %.0f ms", took);
    if (!control("start", NULL, 0))
        return;
    len = 0;
    if (expect_hr("scm_list_readers after the restart", scm_list_readers(NULL, &len), SCM_S_OK)) {
        list = malloc(len);
        if (list != NULL && expect_hr("scm_list_readers", scm_list_readers(list, &len), SCM_S_OK))
            expect(multi_string_has(list, len, reader), "%s is not listed after the restart", reader);
        free(list);
    }
    expect_hr("scm_reconnect", scm_reconnect(m), SCM_S_OK);
    state_is(m, SCM_STATE_SPECIFIC, SCM_PROTOCOL_T1);
    echo_ok(m, "after");
    pass("pcscd dead: transmit -> %s, status -> %s, scm_reconnect -> %s, scm_list_readers -> %s, all four in %.0f ms; "
         "restarted: readers listed, scm_reconnect -> %s, state %d protocol %d, ECHO ok",
         hex(down_transmit), hex(down_status), hex(down_reconnect), hex(down_list), took, hex(SCM_S_OK),
         SCM_STATE_SPECIFIC, SCM_PROTOCOL_T1);
}

int main(void)
{
    const char *reader = lab_reader();
    scm_manage *m;
    if (reader == NULL || (m = attached(reader)) == NULL)
        return finish();
    reset_by_another_connection(m, reader);
    card_removed_and_reinserted(m);
    service_killed_and_restarted(m, reader);
    scm_release(m);
    return finish();
}
