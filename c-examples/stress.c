/*
 * A C stress driver for the memory checks (.ci/test-reliability): N cycles of
 * create / attach / transmit / lock / unlock / status / ATR / reader name / list readers /
 * detach / release, plus hostile calls (NULL pointers, released and forged tokens, bad enums),
 * every result checked. With "flat" it also checks that the resident set size after all
 * cycles is within 1 MiB of what it was after the first tenth.
 *
 *   ./stress N [flat]      (reader: $SCM_LAB_READER)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scardmanage.h"

static int check(const char *what, scm_hresult got, scm_hresult want)
{
    if (got == want)
        return 0;
    fprintf(stderr, "%s: 0x%08lX (%s), expected 0x%08lX\n", what, (unsigned long)(uint32_t)got,
            scm_error_message(got), (unsigned long)(uint32_t)want);
    return 1;
}

static long resident_kib(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = -1;
    if (f)
        fclose(f);
    return resident * 4;
}

static int cycle(const char *reader)
{
    static const uint8_t echo[] = {0x80, 0x10, 0x00, 0x00, 0x02, 'o', 'k'};
    uint8_t buf[SCM_MAX_APDU_SIZE];
    size_t len = sizeof buf;
    uint32_t state, protocol;
    scm_manage *m;
    int bad = 0;

    bad |= check("create", scm_create(&m), SCM_S_OK);
    if (bad)
        return 1;
    bad |= check("attach", scm_attach_by_ifd(m, reader), SCM_S_OK);
    bad |= check("transmit", scm_transmit(m, echo, sizeof echo, buf, &len), SCM_S_OK);
    bad |= len != 4 || memcmp(buf, "ok\x90\x00", 4) != 0;
    bad |= check("lock", scm_lock(m), SCM_S_OK);
    bad |= check("status", scm_status(m, &state, &protocol), SCM_S_OK);
    bad |= check("unlock", scm_unlock(m, SCM_LEAVE_CARD), SCM_S_OK);
    len = sizeof buf;
    bad |= check("atr", scm_get_atr(m, buf, &len), SCM_S_OK);
    len = sizeof buf;
    bad |= check("name", scm_get_reader_name(m, (char *)buf, &len), SCM_S_OK);
    len = sizeof buf;
    bad |= check("list", scm_list_readers((char *)buf, &len), SCM_S_OK);
    /* Hostile calls on a live manager change nothing. */
    bad |= check("status NULL", scm_status(m, NULL, &protocol), SCM_E_POINTER);
    bad |= check("transmit NULL", scm_transmit(m, NULL, 4, buf, &len), SCM_E_POINTER);
    bad |= check("transmit 0", scm_transmit(m, echo, 0, buf, &len), SCM_E_INVALIDARG);
    bad |= check("attach again", scm_attach_by_ifd(m, reader), SCM_E_NOT_ATTACHED);
    bad |= check("attach bad UTF-8", scm_attach_by_ifd(m, "\xC0\x80"), SCM_E_INVALIDARG);
    bad |= check("unlock bad", scm_unlock(m, 9), SCM_E_INVALIDARG);
    bad |= check("detach", scm_detach(m), SCM_S_OK);
    bad |= check("release", scm_release(m), SCM_S_OK);
    bad |= check("released", scm_lock(m), SCM_E_HANDLE);
    bad |= check("release twice", scm_release(m), SCM_E_HANDLE);
    bad |= check("forged", scm_reconnect((scm_manage *)(uintptr_t)0x5A5A5A5Au), SCM_E_HANDLE);
    return bad;
}

int main(int argc, char **argv)
{
    const char *reader = getenv("SCM_LAB_READER");
    long n = argc > 1 ? atol(argv[1]) : 100, i, base = 0, end;
    int flat = argc > 2 && strcmp(argv[2], "flat") == 0;
    if (!reader) {
        fprintf(stderr, "SCM_LAB_READER is not set (run under scm-lab run)\n");
        return 2;
    }
    for (i = 0; i < n; i++) {
        if (cycle(reader)) {
            fprintf(stderr, "cycle %ld failed\n", i);
            return 1;
        }
        if (i == n / 10)
            base = resident_kib();
    }
    end = resident_kib();
    printf("stress: %ld cycles, resident %ld KiB after %ld, %ld KiB at the end\n", n, base, n / 10 + 1, end);
    if (flat && end - base > 1024) {
        fprintf(stderr, "memory grew by %ld KiB\n", end - base);
        return 1;
    }
    return 0;
}
