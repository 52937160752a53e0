/*
 * The core scenarios of tests/api.rs from C: readers listed, attach by UTF-8 and UTF-16 names
 * (a non-ASCII one included), status in COM values, ATR, transmit (short, 255 bytes, extended,
 * buffer too small), a borrowed handle of the program's own connection, dead and forged
 * tokens, NULLs. Needs `scm-lab run --pairs 2 --friendly 1=<non-ASCII name>`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static const uint8_t DEFAULT_ATR[] = {0x3B, 0x80, 0x01, 0x81};

/* Every byte of a READ answer is its index mod 256, then 90 00. */
static int read_pattern_ok(const uint8_t *r, size_t len, size_t n)
{
    size_t i;
    if (len != n + 2 || r[n] != 0x90 || r[n + 1] != 0x00)
        return 0;
    for (i = 0; i < n; i++)
        if (r[i] != (uint8_t)i)
            return 0;
    return 1;
}

static void list_readers(const char *ascii, const char *non_ascii)
{
    char count[16];
    size_t len = 0, short_len;
    char *list;
    int n = 0;
    const char *p;
    begin("list readers");
    if (!expect_hr("size query", scm_list_readers(NULL, &len), SCM_S_OK) || !control("readers", count, sizeof count))
        return;
    list = malloc(len);
    if (list == NULL)
        return;
    memset(list, 0x55, len);
    short_len = len - 1;
    expect_hr("one byte short", scm_list_readers(list, &short_len), SCM_SCARD_E_INSUFFICIENT_BUFFER);
    expect(short_len == len, "too small: size %u, want %u", (unsigned)short_len, (unsigned)len);
    expect((unsigned char)list[0] == 0x55, "a short buffer was written");
    if (expect_hr("scm_list_readers", scm_list_readers(list, &len), SCM_S_OK)) {
        for (p = list; *p != '\0'; p += strlen(p) + 1)
            n++;
        expect(n == atoi(count), "%d names listed, the lab has %s readers", n, count);
        expect(multi_string_has(list, len, ascii), "%s not listed", ascii);
        expect(multi_string_has(list, len, non_ascii), "%s not listed byte for byte", spell(non_ascii));
        expect_hr("NULL length", scm_list_readers(list, NULL), SCM_E_POINTER);
        pass("%d readers in %u bytes (short buffer -> %s, size %u), incl. \"%s\" and \"%s\" as exact UTF-8", n,
             (unsigned)len, hex(SCM_SCARD_E_INSUFFICIENT_BUFFER), (unsigned)short_len, ascii, spell(non_ascii));
    }
    free(list);
}

/* Attached by `how`, the manager reports `name` back byte for byte, the card in T=1. */
static int attached_as(scm_manage *m, const char *name, char *got, size_t cap)
{
    size_t len = cap;
    uint32_t state = 99, protocol = 99;
    if (!expect_hr("scm_get_reader_name", scm_get_reader_name(m, got, &len), SCM_S_OK))
        return 0;
    expect(len == strlen(name) + 1 && strcmp(got, name) == 0, "reader name %s (%u bytes), want %s",
           spell(got), (unsigned)len, spell(name));
    expect_hr("scm_status", scm_status(m, &state, &protocol), SCM_S_OK);
    expect(state == SCM_STATE_SPECIFIC && protocol == SCM_PROTOCOL_T1, "state %u protocol %u", (unsigned)state,
           (unsigned)protocol);
    return echo_ok(m, "named");
}

static void attach_by_names(const char *reader, const char *label)
{
    uint16_t wide[1024];
    char got[1024];
    scm_manage *m = NULL;
    static const uint16_t lone_surrogate[] = {0x4C, 0xD800, 0x61, 0};
    char scenario[80];
    size_t units = 0;
    snprintf(scenario, sizeof scenario, "attach by UTF-8 and UTF-16 names (%s)", label);
    begin(scenario);
    if (!expect_hr("scm_create", scm_create(&m), SCM_S_OK))
        return;
    if (expect_hr("scm_attach_by_ifd (UTF-8)", scm_attach_by_ifd(m, reader), SCM_S_OK)) {
        attached_as(m, reader, got, sizeof got);
        expect_hr("scm_detach", scm_detach(m), SCM_S_OK);
    }
    if (!expect(utf8_to_utf16(reader, wide, 1024), "the name is not UTF-8"))
        wide[0] = 0;
    while (wide[units] != 0)
        units++;
    if (expect_hr("scm_attach_by_ifd_w (UTF-16)", scm_attach_by_ifd_w(m, wide), SCM_S_OK)) {
        attached_as(m, reader, got, sizeof got);
        expect_hr("attached twice", scm_attach_by_ifd_w(m, wide), SCM_E_NOT_ATTACHED);
        expect_hr("scm_detach", scm_detach(m), SCM_S_OK);
    }
    expect_hr("unpaired surrogate", scm_attach_by_ifd_w(m, lone_surrogate), SCM_E_INVALIDARG);
    expect_hr("unknown reader", scm_attach_by_ifd(m, "No Such Reader 00 00"), SCM_SCARD_E_UNKNOWN_READER);
    expect_hr("scm_release", scm_release(m), SCM_S_OK);
    pass("\"%s\" attached by UTF-8 (%u bytes) and by UTF-16 (%u units), scm_get_reader_name gave the same UTF-8 "
         "back, state %u protocol %u; bad UTF-16 -> %s, unknown reader -> %s",
         spell(reader), (unsigned)strlen(reader), (unsigned)units, SCM_STATE_SPECIFIC, SCM_PROTOCOL_T1,
         hex(SCM_E_INVALIDARG), hex(SCM_SCARD_E_UNKNOWN_READER));
}

static void status_and_atr(scm_manage *m)
{
    uint32_t state = 99, protocol = 99;
    uint8_t atr[40] = {0};
    size_t len = 0, short_len = sizeof DEFAULT_ATR - 1;
    scm_manage *unattached = NULL;
    begin("status with COM values");
    expect_hr("scm_status", scm_status(m, &state, &protocol), SCM_S_OK);
    expect(state == SCM_STATE_SPECIFIC, "state %u, want SCM_STATE_SPECIFIC (6)", (unsigned)state);
    expect(protocol == SCM_PROTOCOL_T1, "protocol %u, want SCM_PROTOCOL_T1 (2)", (unsigned)protocol);
    expect_hr("scm_create", scm_create(&unattached), SCM_S_OK);
    expect_hr("unattached", scm_status(unattached, &state, &protocol), SCM_E_NOT_ATTACHED);
    scm_release(unattached);
    pass("state %u (SCM_STATE_SPECIFIC), protocol %u (SCM_PROTOCOL_T1); unattached -> %s", (unsigned)state,
         (unsigned)protocol, hex(SCM_E_NOT_ATTACHED));

    begin("ATR");
    expect_hr("size query", scm_get_atr(m, NULL, &len), SCM_S_OK);
    expect(len == sizeof DEFAULT_ATR, "size %u", (unsigned)len);
    expect_hr("one byte short", scm_get_atr(m, atr, &short_len), SCM_SCARD_E_INSUFFICIENT_BUFFER);
    expect(short_len == sizeof DEFAULT_ATR, "too small: size %u", (unsigned)short_len);
    len = sizeof atr;
    if (expect_hr("scm_get_atr", scm_get_atr(m, atr, &len), SCM_S_OK))
        expect(len == sizeof DEFAULT_ATR && memcmp(atr, DEFAULT_ATR, len) == 0, "ATR of %u bytes differs", (unsigned)len);
    pass("%02X %02X %02X %02X; short buffer -> %s, size %u", atr[0], atr[1], atr[2], atr[3],
         hex(SCM_SCARD_E_INSUFFICIENT_BUFFER), (unsigned)short_len);
}

static void transmit(scm_manage *m)
{
    static const uint8_t select[] = {0x00, 0xA4, 0x04, 0x00, 0x02, 0xA0, 0x00};
    static const uint8_t read_255[] = {0x80, 0x20, 0x00, 0xFF, 0x00};
    /* 65533 bytes with an extended Le: the most vpcd frames with the status word. */
    static const uint8_t read_extended[] = {0x80, 0x20, 0xFF, 0xFD, 0x00, 0x00, 0x00};
    uint8_t apdu[32], small[12];
    uint8_t *response = malloc(SCM_MAX_APDU_SIZE);
    size_t len, apdu_len = echo_apdu("0123456789", apdu);
    unsigned long before = 0, after = 0, resets, power_off;
    if (response == NULL)
        return;

    begin("transmit short");
    len = SCM_MAX_APDU_SIZE;
    expect_hr("SELECT", scm_transmit(m, select, sizeof select, response, &len), SCM_S_OK);
    expect(len == 2 && response[0] == 0x90 && response[1] == 0x00, "SELECT answered %u bytes", (unsigned)len);
    echo_ok(m, "hello");
    pass("SELECT -> 90 00, ECHO \"hello\" -> \"hello\" 90 00");

    begin("transmit 255-byte answer");
    len = SCM_MAX_APDU_SIZE;
    if (expect_hr("READ 255", scm_transmit(m, read_255, sizeof read_255, response, &len), SCM_S_OK))
        expect(read_pattern_ok(response, len, 255), "READ 255 answered %u bytes, not the pattern", (unsigned)len);
    pass("READ 255 -> %u bytes, 00 01 .. FE then %02X %02X", (unsigned)len, response[len - 2], response[len - 1]);

    begin("transmit extended answer");
    len = SCM_MAX_APDU_SIZE;
    if (expect_hr("READ 65533", scm_transmit(m, read_extended, sizeof read_extended, response, &len), SCM_S_OK))
        expect(read_pattern_ok(response, len, 65533), "READ 65533 answered %u bytes, not the pattern", (unsigned)len);
    pass("READ 65533 (extended Le) -> %u bytes, pattern intact, then %02X %02X", (unsigned)len, response[len - 2],
         response[len - 1]);

    begin("transmit buffer too small");
    if (lab_counters(0, &before, &resets, &power_off)) {
        size_t query = 0, short_len = 11, big_short = 258;
        expect_hr("size query", scm_transmit(m, apdu, apdu_len, NULL, &query), SCM_S_OK);
        expect(query == 12, "size query gave %u, want 12", (unsigned)query);
        expect_hr("11-byte buffer", scm_transmit(m, apdu, apdu_len, small, &short_len), SCM_SCARD_E_INSUFFICIENT_BUFFER);
        expect(short_len == 12, "too small: size %u, want 12", (unsigned)short_len);
        expect_hr("extended into 258", scm_transmit(m, read_extended, sizeof read_extended, response, &big_short),
                  SCM_SCARD_E_INSUFFICIENT_BUFFER);
        expect(big_short == 65535, "too small: size %u, want 65535", (unsigned)big_short);
        len = sizeof small;
        expect_hr("12-byte buffer", scm_transmit(m, apdu, apdu_len, small, &len), SCM_S_OK);
        expect(len == 12 && memcmp(small, "0123456789\x90\x00", 12) == 0, "12-byte answer differs");
        len = sizeof small;
        expect_hr("empty command", scm_transmit(m, apdu, 0, small, &len), SCM_E_INVALIDARG);
        expect_hr("oversized command", scm_transmit(m, apdu, SCM_MAX_APDU_SIZE + 1, small, &len), SCM_E_INVALIDARG);
        if (lab_counters(0, &after, &resets, &power_off))
            expect(after == before + 4, "the card saw %lu APDUs, want 4 (every size answer sends)", after - before);
        pass("size query -> 12; 11 bytes -> %s, size %u; 65535-byte answer into 258 -> %s, size %u; "
             "12 bytes -> ok; the card saw %lu APDUs",
             hex(SCM_SCARD_E_INSUFFICIENT_BUFFER), (unsigned)short_len, hex(SCM_SCARD_E_INSUFFICIENT_BUFFER),
             (unsigned)big_short, after - before);
    }
    free(response);
}

/* The ordinal states of a reader attached without a card, then with one not yet connected. */
static void states_without_a_card(void)
{
    char reader[512];
    uint32_t absent[2] = {99, 99}, present[2] = {99, 99};
    scm_hresult no_card;
    uint8_t apdu[16], response[16];
    size_t len = sizeof response;
    scm_manage *m;
    begin("status with COM values, reader without a card");
    if (!control("reader 1", reader, sizeof reader) || (m = attached(reader)) == NULL)
        return;
    expect_hr("scm_status", scm_status(m, &absent[0], &absent[1]), SCM_S_OK);
    expect(absent[0] == SCM_STATE_ABSENT && absent[1] == SCM_PROTOCOL_UNDEFINED, "empty: state %u protocol %u",
           (unsigned)absent[0], (unsigned)absent[1]);
    no_card = scm_transmit(m, apdu, echo_apdu("x", apdu), response, &len);
    expect_hr("transmit", no_card, SCM_SCARD_E_NO_SMARTCARD);
    if (control("insert 1", NULL, 0)) {
        expect_hr("scm_status", scm_status(m, &present[0], &present[1]), SCM_S_OK);
        expect(present[0] == SCM_STATE_PRESENT && present[1] == SCM_PROTOCOL_UNDEFINED,
               "card in, not connected: state %u protocol %u", (unsigned)present[0], (unsigned)present[1]);
        expect_hr("scm_reconnect", scm_reconnect(m), SCM_S_OK);
        echo_ok(m, "late card");
    }
    scm_release(m);
    pass("\"%s\" empty: state %u (ABSENT) protocol %u, transmit -> %s; card in: state %u (PRESENT) protocol %u, "
         "scm_reconnect connects it, ECHO ok",
         reader, (unsigned)absent[0], (unsigned)absent[1], hex(no_card), (unsigned)present[0], (unsigned)present[1]);
}

static void borrowed_handle(const char *reader)
{
    struct raw_conn owner;
    scm_manage *m = NULL;
    scm_hscard handle = 0;
    uint32_t state = 99, protocol = 99;
    unsigned long apdus, resets_before = 0, resets_after = 0, power_off;
    int32_t rv;
    begin("borrowed handle");
    rv = raw_connect(&owner, reader);
    if (!expect(rv == 0, "the program's own SCardConnect: %s", hex(rv)))
        return;
    lab_counters(0, &apdus, &resets_before, &power_off);
    expect_hr("scm_create", scm_create(&m), SCM_S_OK);
    expect_hr("handle 0", scm_attach_by_handle(m, 0), SCM_E_INVALIDARG);
    if (expect_hr("scm_attach_by_handle", scm_attach_by_handle(m, (scm_hscard)owner.card), SCM_S_OK)) {
        expect_hr("scm_get_handle", scm_get_handle(m, &handle), SCM_S_OK);
        expect(handle == (scm_hscard)owner.card, "scm_get_handle gave another handle");
        expect_hr("scm_status", scm_status(m, &state, &protocol), SCM_S_OK);
        expect(state == SCM_STATE_SPECIFIC && protocol == SCM_PROTOCOL_T1, "state %u protocol %u", (unsigned)state,
               (unsigned)protocol);
        echo_ok(m, "borrowed");
        expect_hr("detach RESET", scm_detach_ex(m, SCM_RESET_CARD), SCM_E_INVALIDARG);
        expect_hr("scm_detach", scm_detach(m), SCM_S_OK);
    }
    rv = raw_echo(&owner, "mine");
    expect(rv == 0, "the owner's transmit after scm_detach: %s", hex(rv));
    expect_hr("attach again", scm_attach_by_handle(m, (scm_hscard)owner.card), SCM_S_OK);
    expect_hr("scm_release", scm_release(m), SCM_S_OK);
    rv = raw_echo(&owner, "still");
    expect(rv == 0, "the owner's transmit after scm_release: %s", hex(rv));
    lab_counters(0, &apdus, &resets_after, &power_off);
    expect(resets_after == resets_before, "the card was reset (%lu -> %lu)", resets_before, resets_after);
    raw_close(&owner);
    pass("own SCardConnect%s handle attached, same handle back, state %u protocol %u, ECHO ok; after detach and "
         "after release the owner's SCardTransmit still works; card resets %lu -> %lu",
#ifdef _WIN32
         "W",
#else
         "",
#endif
         (unsigned)state, (unsigned)protocol, resets_before, resets_after);
}

/* Every function that takes a manager, with `m`; each must give `want`. */
static void every_function(scm_manage *m, scm_hresult want, const char *label)
{
    uint32_t state, protocol;
    size_t len = 64;
    uint8_t buf[64];
    scm_hscard handle;
    static const uint8_t apdu[] = {0x00, 0xA4, 0x04, 0x00};
    static const uint16_t wide[] = {0x41, 0};
    char what[64];
    scm_hresult got[15];
    int i;
    got[0] = scm_attach_by_ifd(m, "Lab");
    got[1] = scm_attach_by_ifd_w(m, wide);
    got[2] = scm_attach_by_ifd_ex(m, "Lab", SCM_SHARE_SHARED, SCM_PROTOCOL_ANY);
    got[3] = scm_attach_by_handle(m, 1);
    got[4] = scm_reconnect(m);
    got[5] = scm_detach(m);
    got[6] = scm_detach_ex(m, SCM_LEAVE_CARD);
    got[7] = scm_lock(m);
    got[8] = scm_unlock(m, SCM_LEAVE_CARD);
    got[9] = scm_status(m, &state, &protocol);
    got[10] = scm_transmit(m, apdu, sizeof apdu, buf, &len);
    got[11] = scm_get_atr(m, buf, &len);
    got[12] = scm_get_reader_name(m, (char *)buf, &len);
    got[13] = scm_get_handle(m, &handle);
    got[14] = scm_release(m);
    for (i = 0; i < 15; i++) {
        snprintf(what, sizeof what, "%s, function %d", label, i);
        expect_hr(what, got[i], want);
    }
}

static void tokens_and_nulls(void)
{
    scm_manage *released = NULL;
    scm_manage *forged = (scm_manage *)(uintptr_t)0x5A5A1234u;
    size_t len = 0;
    begin("forged and released tokens");
    expect_hr("scm_create", scm_create(&released), SCM_S_OK);
    expect_hr("scm_release", scm_release(released), SCM_S_OK);
    every_function(released, SCM_E_HANDLE, "released");
    every_function(forged, SCM_E_HANDLE, "forged");
    pass("15 functions x {released, forged} -> %s", hex(SCM_E_HANDLE));

    begin("NULLs");
    every_function(NULL, SCM_E_POINTER, "NULL manager");
    expect_hr("scm_create(NULL)", scm_create(NULL), SCM_E_POINTER);
    expect_hr("scm_list_readers(NULL, NULL)", scm_list_readers(NULL, NULL), SCM_E_POINTER);
    expect_hr("scm_get_atr(NULL, .., NULL)", scm_get_atr(NULL, NULL, &len), SCM_E_POINTER);
    pass("15 functions with a NULL manager, scm_create(NULL), scm_list_readers(NULL, NULL) -> %s", hex(SCM_E_POINTER));
}

static void names_back_as_utf8(const char *reader)
{
    char got[1024];
    size_t len = 0, short_len;
    scm_manage *m;
    begin("non-ASCII name back as UTF-8");
    m = attached(reader);
    if (m == NULL)
        return;
    expect_hr("size query", scm_get_reader_name(m, NULL, &len), SCM_S_OK);
    expect(len == strlen(reader) + 1, "size %u, want %u", (unsigned)len, (unsigned)strlen(reader) + 1);
    short_len = len - 1;
    expect_hr("one byte short", scm_get_reader_name(m, got, &short_len), SCM_SCARD_E_INSUFFICIENT_BUFFER);
    expect(short_len == len, "too small: size %u", (unsigned)short_len);
    len = sizeof got;
    if (expect_hr("scm_get_reader_name", scm_get_reader_name(m, got, &len), SCM_S_OK))
        expect(memcmp(got, reader, strlen(reader) + 1) == 0, "got %s, want %s", spell(got), spell(reader));
    scm_release(m);
    pass("scm_get_reader_name: %u bytes with the NUL, byte for byte the lab's \"%s\" (short buffer -> %s, size %u)",
         (unsigned)len, spell(got), hex(SCM_SCARD_E_INSUFFICIENT_BUFFER), (unsigned)short_len);
}

int main(void)
{
    const char *reader = lab_reader();
    char non_ascii[512], request[32];
    int index;
    scm_manage *m;
    printf("scardmanage %s\n", scm_version());
    if (reader == NULL || !lab_non_ascii_reader(&index, non_ascii, sizeof non_ascii))
        return finish();
    snprintf(request, sizeof request, "insert %d", index);
    if (!control(request, NULL, 0))
        return finish();

    list_readers(reader, non_ascii);
    attach_by_names(reader, "ASCII");
    attach_by_names(non_ascii, "non-ASCII");
    names_back_as_utf8(non_ascii);
    m = attached(reader);
    if (m != NULL) {
        status_and_atr(m);
        transmit(m);
        scm_release(m);
    }
    states_without_a_card();
    borrowed_handle(reader);
    tokens_and_nulls();
    return finish();
}
