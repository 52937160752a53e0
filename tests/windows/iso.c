/*
 * The ISO/IEC 7816-4 part of the ABI against the lab's ISO card (`scm-lab run --iso`): the
 * 40 000-byte EF read with scm_transmit_ex in one extended command and in short ones, PIN
 * verification down to a wrong try and back, challenge and INTERNAL AUTHENTICATE, and the
 * factories' tokens (by IID, by name, one kind refused as another).
 */
#include <stdio.h>
#include <string.h>

#include "check.h"

#define BIG_SIZE 40000
#define SFI_BIG 2
#define PIN_REF 0x81
#define KEY_REF 0x01

static const uint8_t df_name[] = {0xF0, 0x53, 0x43, 0x4D, 0x49, 0x53, 0x4F};
static const uint8_t key[8] = {'S', 'C', 'M', '-', 'K', 'E', 'Y', '!'};
static const uint8_t iid_verify[16] = {0x85, 0xDD, 0x29, 0x40, 0x02, 0x59, 0xD0, 0x11,
                                       0xB8, 0x4C, 0x00, 0xC0, 0x4F, 0xD4, 0x24, 0xB9};
static uint8_t response[SCM_MAX_APDU_SIZE];

static int select_application(scm_manage *m)
{
    uint8_t select[5 + sizeof df_name] = {0x00, 0xA4, 0x04, 0x0C, sizeof df_name};
    size_t len = sizeof response;
    memcpy(select + 5, df_name, sizeof df_name);
    return expect_hr("SELECT", scm_transmit_ex(m, SCM_ISO_ALL, select, sizeof select, response, &len), SCM_S_OK) &&
           expect(len == 2 && response[0] == 0x90, "SELECT answered %u bytes", (unsigned)len);
}

/* Reads the big EF from `offset` with READ BINARY by SFI (first command) then by offset; `le` 0
   asks 256 (short), 65536 extended. Returns the bytes read that match the card's pattern. */
static size_t read_big(scm_manage *m, int extended, unsigned *commands)
{
    size_t done = 0;
    *commands = 0;
    while (done < BIG_SIZE) {
        uint8_t read[7] = {0x00, 0xB0, (uint8_t)(done >> 8), (uint8_t)done, 0x00, 0x00, 0x00};
        size_t len = sizeof response, n, i;
        if (done == 0)
            read[2] = 0x80 | SFI_BIG;
        if (!expect_hr("READ BINARY", scm_transmit_ex(m, SCM_ISO_ALL, read, extended ? 7 : 5, response, &len), SCM_S_OK) ||
            !expect(len >= 2 && response[len - 2] == 0x90, "READ BINARY at %u: %u bytes", (unsigned)done, (unsigned)len))
            return done;
        n = len - 2;
        for (i = 0; i < n; i++)
            if (!expect(response[i] == (uint8_t)((done + i) % 251), "byte %u differs", (unsigned)(done + i)))
                return done;
        done += n;
        ++*commands;
        if (n == 0 || done > 32767 - 256)
            break; /* offsets past 32 767 need the odd-instruction form (scm_file_read's job) */
    }
    return done;
}

static void transmit_ex(scm_manage *m)
{
    unsigned extended_commands, short_commands;
    size_t extended_bytes, short_bytes;
    begin("scm_transmit_ex reads the 40 000-byte EF extended and short");
    if (!select_application(m))
        return;
    extended_bytes = read_big(m, 1, &extended_commands);
    short_bytes = read_big(m, 0, &short_commands);
    expect(extended_bytes == BIG_SIZE && extended_commands == 1, "extended: %u bytes in %u commands",
           (unsigned)extended_bytes, extended_commands);
    expect(short_bytes >= 32512 && short_commands == short_bytes / 256, "short: %u bytes in %u commands",
           (unsigned)short_bytes, short_commands);
    pass("extended: %u bytes in %u command; short: %u bytes (to offset 32 767) in %u commands",
         (unsigned)extended_bytes, extended_commands, (unsigned)short_bytes, short_commands);
}

static void chv_and_auth(scm_manage *m)
{
    scm_chv *v = NULL;
    scm_auth *a = NULL;
    void *any = NULL;
    uint32_t tries = 0;
    uint8_t challenge[8], data[32], answer[64];
    size_t len = sizeof challenge, i;
    begin("PIN verification and card authentication");
    if (!expect_hr("create CHV by IID", scm_create_interface(m, iid_verify, NULL, &any), SCM_S_OK) ||
        !expect_hr("create auth", scm_create_card_auth(m, &a), SCM_S_OK))
        return;
    v = any;
    expect_hr("wrong PIN", scm_chv_verify(v, PIN_REF, (const uint8_t *)"9999", 4, 0, &tries), SCM_SCARD_W_WRONG_CHV);
    expect(tries == 2, "tries left %u", (unsigned)tries);
    expect_hr("right PIN", scm_chv_verify(v, PIN_REF, (const uint8_t *)"1234", 4, 0, NULL), SCM_S_OK);
    expect_hr("tries left", scm_chv_get_tries_left(v, PIN_REF, &tries), SCM_S_OK);
    expect(tries == SCM_TRIES_UNKNOWN, "tries after verification %u", (unsigned)tries);
    expect_hr("challenge", scm_auth_get_challenge(a, challenge, &len), SCM_S_OK);
    expect(len == sizeof challenge, "challenge of %u bytes", (unsigned)len);
    for (i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 3);
    len = sizeof answer;
    expect_hr("INTERNAL AUTHENTICATE", scm_auth_icc_auth(a, 0, KEY_REF, data, sizeof data, answer, &len), SCM_S_OK);
    expect(len == sizeof data, "authentication answer of %u bytes", (unsigned)len);
    for (i = 0; i < sizeof data && i < len; i++)
        if (!expect(answer[i] == (data[i] ^ key[i % 8]), "answer byte %u", (unsigned)i))
            break;
    for (i = 0; i < sizeof challenge; i++)
        challenge[i] ^= key[i % 8];
    expect_hr("EXTERNAL AUTHENTICATE", scm_auth_app_auth(a, 0, KEY_REF, challenge, sizeof challenge), SCM_S_OK);
    /* One kind of token is never another. */
    expect_hr("CHV token as auth", scm_auth_release((scm_auth *)(void *)v), SCM_E_HANDLE);
    expect_hr("create by name", scm_create_interface(m, NULL, "CryptoProvider", &any), SCM_E_NOTIMPL);
    expect_hr("release CHV", scm_chv_release(v), SCM_S_OK);
    expect_hr("release auth", scm_auth_release(a), SCM_S_OK);
    pass("wrong PIN -> %s with 2 tries, right PIN, challenge, INTERNAL and EXTERNAL AUTHENTICATE; "
         "a CHV token as an auth one -> %s",
         hex(SCM_SCARD_W_WRONG_CHV), hex(SCM_E_HANDLE));
}

int main(void)
{
    const char *reader = lab_reader();
    scm_manage *m;
    begin("attach to the ISO card");
    if (reader == NULL || (m = attached(reader)) == NULL)
        return finish();
    pass("%s", spell(reader));
    transmit_ex(m);
    chv_and_auth(m);
    scm_release(m);
    return finish();
}
