/*
 * scardmanage in one page: list the readers, attach to one by name, wait for a card if there is
 * none yet, read its state and the card's ATR, send APDUs (one under the card lock), reconnect,
 * detach, release.
 *
 *   cc -std=c99 demo.c -I ../include -L <libdir> -lscardmanage -o demo
 *   ./demo ["Reader Name"]        (default: the first reader PC/SC lists)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scardmanage.h"

/* Every call returns an HRESULT: negative is a failure, and the library names it. */
static int failed(const char *what, scm_hresult hr)
{
    if (hr >= 0)
        return 0;
    fprintf(stderr, "%s: 0x%08lX %s\n", what, (unsigned long)(uint32_t)hr, scm_error_message(hr));
    return 1;
}

static void print_hex(const char *label, const uint8_t *bytes, size_t len)
{
    size_t i;
    printf("%s", label);
    for (i = 0; i < len; i++)
        printf(" %02X", bytes[i]);
    printf("\n");
}

static const char *state_name(uint32_t state)
{
    static const char *const names[] = {"unknown", "absent", "present", "swallowed",
                                        "powered", "negotiable", "specific"};
    return state <= SCM_STATE_SPECIFIC ? names[state] : "?";
}

int main(int argc, char **argv)
{
    static const uint8_t select_aid[] = {0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x00, 0x01};
    static const uint8_t get_challenge[] = {0x00, 0x84, 0x00, 0x00, 0x08};
    char *readers = NULL;
    size_t readers_len = 0;
    const char *reader;
    scm_manage *manager = NULL;
    uint32_t state, protocol;
    uint8_t atr[64], response[258];
    size_t atr_len = sizeof atr, response_len;
    int status = EXIT_FAILURE;

    printf("scardmanage %s\n", scm_version());

    /* 1. Which readers are there? Ask for the size, then fetch the multi-string. */
    if (failed("scm_list_readers", scm_list_readers(NULL, &readers_len)))
        return EXIT_FAILURE;
    readers = malloc(readers_len);
    if (readers == NULL || failed("scm_list_readers", scm_list_readers(readers, &readers_len)))
        goto done;
    for (reader = readers; *reader != '\0'; reader += strlen(reader) + 1)
        printf("reader: %s\n", reader);
    reader = argc > 1 ? argv[1] : readers;

    /* 2. A manager, attached to the reader by name (shared, T=0 or T=1). */
    if (failed("scm_create", scm_create(&manager)))
        goto done;
    if (failed("scm_attach_by_ifd", scm_attach_by_ifd(manager, reader)))
        goto done;
    printf("attached to %s\n", reader);

    /* 3. State and protocol, the same values on every OS. */
    if (failed("scm_status", scm_status(manager, &state, &protocol)))
        goto done;
    printf("state %u (%s), protocol %u\n", (unsigned)state, state_name(state), (unsigned)protocol);

    /* An empty reader attaches too. Wait until a card comes (no change is lost between the
     * attach and the wait), then connect it. */
    if (state == SCM_STATE_ABSENT) {
        printf("waiting for a card in %s\n", reader);
        fflush(stdout);
        do {
            if (failed("scm_wait_for_change", scm_wait_for_change(manager, 60000, &state)))
                goto done;
        } while (state != SCM_STATE_PRESENT);
        if (failed("scm_reconnect", scm_reconnect(manager)) ||
            failed("scm_status", scm_status(manager, &state, &protocol)))
            goto done;
        printf("card inserted: state %u (%s), protocol %u\n", (unsigned)state, state_name(state),
               (unsigned)protocol);
    }

    if (failed("scm_get_atr", scm_get_atr(manager, atr, &atr_len)))
        goto done;
    print_hex("ATR:", atr, atr_len);

    /* 4. An APDU: the response carries the status word (90 00 = success). */
    response_len = sizeof response;
    if (failed("scm_transmit", scm_transmit(manager, select_aid, sizeof select_aid, response, &response_len)))
        goto done;
    print_hex("SELECT ->", response, response_len);

    /* 5. Exclusive use of the card for a sequence of commands. */
    if (failed("scm_lock", scm_lock(manager)))
        goto done;
    response_len = sizeof response;
    if (failed("scm_transmit", scm_transmit(manager, get_challenge, sizeof get_challenge, response, &response_len)))
        goto done;
    print_hex("GET CHALLENGE ->", response, response_len);
    if (failed("scm_unlock", scm_unlock(manager, SCM_LEAVE_CARD)))
        goto done;

    /* 6. Reconnect: what recovers from a reset card, a re-inserted card or a restarted service. */
    if (failed("scm_reconnect", scm_reconnect(manager)))
        goto done;
    if (failed("scm_status", scm_status(manager, &state, &protocol)))
        goto done;
    printf("reconnected: state %u (%s)\n", (unsigned)state, state_name(state));

    /* 7. Detach (leaving the card as it is); the manager could attach again. */
    if (failed("scm_detach", scm_detach(manager)))
        goto done;
    printf("detached\n");
    status = EXIT_SUCCESS;

done:
    if (manager != NULL)
        failed("scm_release", scm_release(manager));
    free(readers);
    return status;
}
