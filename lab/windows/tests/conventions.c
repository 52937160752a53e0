/*
 * WinSCard's documented conventions, checked from a Windows program through the lab's bridge
 * (run by lab/tests/windows.rs: scm-lab run --windows --pairs 2 --friendly "1=<NAME>").
 *
 * Readers: 0 "Lab A 00 00" holds the lab's card; 1 "Lab A 00 01" is empty; 2 and 3 are named
 * from a non-ASCII FRIENDLYNAME. One line per check, "ok NAME: ..." or "FAIL NAME: ...";
 * the exit code is the number of failures.
 */
#include <winsock2.h>
#include <windows.h>
#include <winscard.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The friendly name given to pair 1 by the test, as UTF-16: two-, three- and four-byte UTF-8
 * sequences, the last a surrogate pair. */
static const WCHAR FRIENDLY_READER[] = L"Lecteur \u00e9\u20ac \u65e5\u672c \U0001D11E 00 00";

static int failures;

static void check(BOOL ok, const char *name, const char *format, ...)
{
    va_list args;
    printf("%s %s: ", ok ? "ok" : "FAIL", name);
    va_start(args, format);
    vprintf(format, args);
    va_end(args);
    printf("\n");
    fflush(stdout);
    if (!ok)
        failures++;
}

/* ---- the lab's control channel (SCM_LAB_CONTROL) ---- */

static SOCKET control;

static BOOL control_open(void)
{
    char address[64], *colon;
    struct sockaddr_in to = { 0 };
    WSADATA wsa;
    DWORD n = GetEnvironmentVariableA("SCM_LAB_CONTROL", address, sizeof address);
    if (n == 0 || n >= sizeof address || !(colon = strrchr(address, ':')) || WSAStartup(MAKEWORD(2, 2), &wsa))
        return FALSE;
    *colon = 0;
    to.sin_family = AF_INET;
    to.sin_port = htons((u_short)atoi(colon + 1));
    to.sin_addr.s_addr = inet_addr(address);
    control = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    return control != INVALID_SOCKET && connect(control, (struct sockaddr *)&to, sizeof to) == 0;
}

/* Sends one request and returns its reply line (without the newline) in a static buffer. */
static const char *ask(const char *request)
{
    static char reply[512];
    size_t used = 0;
    char line[128];
    snprintf(line, sizeof line, "%s\n", request);
    send(control, line, (int)strlen(line), 0);
    while (used + 1 < sizeof reply) {
        if (recv(control, reply + used, 1, 0) != 1 || reply[used] == '\n')
            break;
        used++;
    }
    reply[used] = 0;
    return reply;
}

/* ---- helpers ---- */

static SCARDCONTEXT establish(void)
{
    SCARDCONTEXT context = 0;
    LONG rv = SCardEstablishContext(SCARD_SCOPE_USER, NULL, NULL, &context);
    if (rv != SCARD_S_SUCCESS) {
        printf("FAIL establish: 0x%08lX\n", (unsigned long)rv);
        exit(100);
    }
    return context;
}

/* A narrow string for the log, its non-ASCII bytes as \xNN (they are in the ANSI code page). */
static const char *escaped(const char *s)
{
    static char out[1024];
    size_t used = 0;
    for (; *s && used + 5 < sizeof out; s++)
        used += (unsigned char)*s < 0x80 ? (size_t)snprintf(out + used, 2, "%c", *s)
                                         : (size_t)snprintf(out + used, 5, "\\x%02X", (unsigned char)*s);
    out[used] = 0;
    return out;
}

static BOOL multi_string_has_w(const WCHAR *list, const WCHAR *name)
{
    for (; *list; list += wcslen(list) + 1)
        if (wcscmp(list, name) == 0)
            return TRUE;
    return FALSE;
}

static BOOL multi_string_has_a(const char *list, const char *name)
{
    for (; *list; list += strlen(list) + 1)
        if (strcmp(list, name) == 0)
            return TRUE;
    return FALSE;
}

/* ---- the checks ---- */

static void pci_exports(void)
{
    BOOL ok = g_rgSCardT0Pci.dwProtocol == 1 && g_rgSCardT1Pci.dwProtocol == 2
              && g_rgSCardRawPci.dwProtocol == 0x10000 && SCARD_PCI_T1->cbPciLength == sizeof(SCARD_IO_REQUEST)
              && g_rgSCardT0Pci.cbPciLength == 8 && g_rgSCardRawPci.cbPciLength == 8;
    check(ok, "pci_exports", "T0 {%lu,%lu} T1 {%lu,%lu} RAW {0x%lX,%lu}", g_rgSCardT0Pci.dwProtocol,
          g_rgSCardT0Pci.cbPciLength, g_rgSCardT1Pci.dwProtocol, g_rgSCardT1Pci.cbPciLength,
          g_rgSCardRawPci.dwProtocol, g_rgSCardRawPci.cbPciLength);
}

static void widths(void)
{
    check(sizeof(DWORD) == 4 && sizeof(LONG) == 4 && sizeof(SCARDHANDLE) == sizeof(void *)
              && sizeof(SCARDCONTEXT) == sizeof(ULONG_PTR),
          "widths", "DWORD %u, LONG %u, SCARDHANDLE %u, pointer %u bytes", (unsigned)sizeof(DWORD),
          (unsigned)sizeof(LONG), (unsigned)sizeof(SCARDHANDLE), (unsigned)sizeof(void *));
}

static void ordinal_states(SCARDCONTEXT context)
{
    SCARDHANDLE card, direct;
    DWORD protocol = 0, state = 0, direct_state = 0, n = 0;
    LONG rv = SCardConnectW(context, L"Lab A 00 00", SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1,
                            &card, &protocol);
    LONG rv2 = rv ? rv : SCardStatusW(card, NULL, &n, &state, &protocol, NULL, NULL);
    LONG rv3 = SCardConnectW(context, L"Lab A 00 01", SCARD_SHARE_DIRECT, 0, &direct, &n);
    LONG rv4 = rv3 ? rv3 : SCardStatusW(direct, NULL, &n, &direct_state, NULL, NULL, NULL);
    check(rv2 == 0 && rv4 == 0 && state == SCARD_SPECIFIC && direct_state == SCARD_ABSENT && protocol == 2,
          "ordinal_states", "card in, T=1: state %lu (SCARD_SPECIFIC = 6), empty reader: state %lu (SCARD_ABSENT = 1) "
          "[0x%lX 0x%lX]", state, direct_state, (unsigned long)rv2, (unsigned long)rv4);
    SCardDisconnect(card, SCARD_LEAVE_CARD);
    SCardDisconnect(direct, SCARD_LEAVE_CARD);
}

static void raw_protocol(SCARDCONTEXT context)
{
    SCARDHANDLE card;
    DWORD protocol = 0, status_protocol = 0, n = 0;
    LONG rv = SCardConnectW(context, L"Lab A 00 00", SCARD_SHARE_SHARED, SCARD_PROTOCOL_RAW, &card, &protocol);
    if (rv == 0) {
        SCardStatusW(card, NULL, &n, NULL, &status_protocol, NULL, NULL);
        /* A reset lets the next connection negotiate T=1 again (pcscd keeps RAW until then). */
        SCardDisconnect(card, SCARD_RESET_CARD);
    }
    check(rv == 0 && SCARD_PROTOCOL_RAW == 0x10000 && protocol == 0x10000 && status_protocol == 0x10000,
          "raw_protocol", "connect asking SCARD_PROTOCOL_RAW (0x%X): 0x%lX, active 0x%lX, status 0x%lX",
          SCARD_PROTOCOL_RAW, (unsigned long)rv, protocol, status_protocol);
}

static void wide_names(SCARDCONTEXT context)
{
    WCHAR readers[2048], name[512];
    DWORD n = ARRAYSIZE(readers), name_length = ARRAYSIZE(name), state = 0;
    SCARDHANDLE card;
    SCARD_READERSTATEW reader_state = { 0 };
    LONG listed = SCardListReadersW(context, NULL, readers, &n);
    BOOL found = listed == 0 && multi_string_has_w(readers, FRIENDLY_READER);
    LONG connected = SCardConnectW(context, FRIENDLY_READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &card, &n);
    LONG status = connected ? connected : SCardStatusW(card, name, &name_length, &state, NULL, NULL, NULL);
    BOOL same = status == 0 && wcscmp(name, FRIENDLY_READER) == 0 && name_length == wcslen(FRIENDLY_READER) + 2;
    LONG changed;
    reader_state.szReader = FRIENDLY_READER;
    reader_state.dwCurrentState = SCARD_STATE_UNAWARE;
    changed = SCardGetStatusChangeW(context, 0, &reader_state, 1);
    check(found && same && changed == 0 && (reader_state.dwEventState & SCARD_STATE_PRESENT),
          "wide_names", "a UTF-16 reader name with a surrogate pair: listed %d, connected 0x%lX, SCardStatusW gave it "
          "back %s (%lu units), SCardGetStatusChangeW 0x%lX state 0x%lX",
          found, (unsigned long)connected, same ? "exactly" : "CHANGED", name_length, (unsigned long)changed,
          reader_state.dwEventState);
    if (connected == 0)
        SCardDisconnect(card, SCARD_LEAVE_CARD);
}

static void ansi_names(SCARDCONTEXT context)
{
    char readers[2048], expected[512], status_name[512] = { 0 };
    DWORD n = sizeof readers, status_length = sizeof status_name;
    SCARDHANDLE card;
    SCARD_READERSTATEA state = { 0 };
    LONG listed = SCardListReadersA(context, NULL, readers, &n);
    LONG ascii, lossy, status = -1, changed;
    WideCharToMultiByte(CP_ACP, 0, FRIENDLY_READER, -1, expected, sizeof expected, NULL, NULL);
    ascii = SCardConnectA(context, "Lab A 00 00", SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &card, &n);
    if (ascii == 0)
        SCardDisconnect(card, SCARD_LEAVE_CARD);
    if (SCardConnectW(context, FRIENDLY_READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &card, &n) == 0) {
        status = SCardStatusA(card, status_name, &status_length, NULL, NULL, NULL, NULL);
        SCardDisconnect(card, SCARD_LEAVE_CARD);
    }
    /* The code page cannot hold every character: the A name names no reader, as on Windows. */
    lossy = SCardConnectA(context, expected, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &card, &n);
    state.szReader = "Lab A 00 00";
    changed = SCardGetStatusChangeA(context, 0, &state, 1);
    check(listed == 0 && multi_string_has_a(readers, expected) && ascii == 0 && status == 0
              && strcmp(status_name, expected) == 0 && lossy == SCARD_E_UNKNOWN_READER && changed == 0
              && (state.dwEventState & SCARD_STATE_PRESENT),
          "ansi_names", "code page %u: SCardListReadersA and SCardStatusA give the name as \"%s\"; SCardConnectA "
          "with an ASCII name 0x%lX, with that name 0x%lX (SCARD_E_UNKNOWN_READER); SCardGetStatusChangeA 0x%lX",
          GetACP(), escaped(expected), (unsigned long)ascii, (unsigned long)lossy, (unsigned long)changed);
}

static void reset_by_another(SCARDCONTEXT context)
{
    static const BYTE echo[] = { 0x80, 0x10, 0x00, 0x00, 0x01, 0x5A, 0x00 };
    SCARDHANDLE ours, theirs;
    BYTE response[16];
    DWORD protocol = 0, reconnected = 0, n = sizeof response;
    LONG rv = SCardConnectW(context, L"Lab A 00 00", SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &ours, &protocol);
    LONG reset = rv ? rv : SCardConnectW(context, L"Lab A 00 00", SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &theirs, &protocol);
    LONG seen, again, after;
    reset = reset ? reset : SCardReconnect(theirs, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_RESET_CARD, &protocol);
    seen = SCardTransmit(ours, SCARD_PCI_T1, echo, sizeof echo, NULL, response, &n);
    again = SCardReconnect(ours, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, SCARD_LEAVE_CARD,
                           &reconnected);
    n = sizeof response;
    after = SCardTransmit(ours, SCARD_PCI_T1, echo, sizeof echo, NULL, response, &n);
    check(reset == 0 && seen == SCARD_W_RESET_CARD && again == 0 && reconnected == SCARD_PROTOCOL_T1 && after == 0,
          "reset_by_another", "another handle's SCardReconnect(SCARD_RESET_CARD) 0x%lX: our transmit 0x%08lX "
          "(SCARD_W_RESET_CARD), SCardReconnect 0x%lX (protocol %lu), then transmit 0x%lX", (unsigned long)reset,
          (unsigned long)seen, (unsigned long)again, reconnected, (unsigned long)after);
    SCardDisconnect(ours, SCARD_LEAVE_CARD);
    SCardDisconnect(theirs, SCARD_LEAVE_CARD);
}

/* Windows reports an empty reader to SCardConnect as a removed card (pcsc-lite: SCARD_E_NO_SMARTCARD),
   and a handle whose card was pulled as a removed card to SCardStatus and SCardTransmit. */
static void card_absent(SCARDCONTEXT context)
{
    static const BYTE echo[] = { 0x80, 0x10, 0x00, 0x00, 0x01, 0x5A, 0x00 };
    SCARDHANDLE card;
    BYTE response[16];
    DWORD protocol = 0, n = sizeof response, state = 0, names = 0;
    LONG empty = SCardConnectW(context, L"Lab A 00 01", SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1,
                               &card, &protocol);
    LONG connected = strcmp(ask("insert 1"), "ok") != 0 ? -1
        : SCardConnectW(context, L"Lab A 00 01", SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &card, &protocol);
    LONG status = -1, transmitted = -1;
    if (connected == 0 && strcmp(ask("remove 1"), "ok") == 0) {
        status = SCardStatusW(card, NULL, &names, &state, &protocol, NULL, NULL);
        transmitted = SCardTransmit(card, SCARD_PCI_T1, echo, sizeof echo, NULL, response, &n);
    }
    check(empty == SCARD_W_REMOVED_CARD && status == SCARD_W_REMOVED_CARD && transmitted == SCARD_W_REMOVED_CARD,
          "card_absent", "SCardConnect to an empty reader 0x%08lX (SCARD_W_REMOVED_CARD 0x%08lX); card pulled after "
          "connect 0x%lX: SCardStatus 0x%08lX, SCardTransmit 0x%08lX", (unsigned long)empty,
          (unsigned long)SCARD_W_REMOVED_CARD, (unsigned long)connected, (unsigned long)status,
          (unsigned long)transmitted);
    if (connected == 0)
        SCardDisconnect(card, SCARD_LEAVE_CARD);
}

static void name_attributes(SCARDCONTEXT context)
{
    SCARDHANDLE card;
    WCHAR wide[128] = { 0 };
    char ansi[128] = { 0 }, expected[128];
    DWORD protocol, wide_length = sizeof wide, ansi_length = sizeof ansi;
    LONG connected = SCardConnectW(context, FRIENDLY_READER, SCARD_SHARE_DIRECT, 0, &card, &protocol);
    LONG w = SCardGetAttrib(card, SCARD_ATTR_DEVICE_FRIENDLY_NAME_W, (LPBYTE)wide, &wide_length);
    LONG a = SCardGetAttrib(card, SCARD_ATTR_DEVICE_FRIENDLY_NAME_A, (LPBYTE)ansi, &ansi_length);
    WideCharToMultiByte(CP_ACP, 0, FRIENDLY_READER, -1, expected, sizeof expected, NULL, NULL);
    check(connected == 0 && w == 0 && wcscmp(wide, FRIENDLY_READER) == 0
              && wide_length == (wcslen(FRIENDLY_READER) + 1) * sizeof(WCHAR) && a == 0 && strcmp(ansi, expected) == 0
              && ansi_length == strlen(expected) + 1,
          "name_attributes", "SCARD_ATTR_DEVICE_FRIENDLY_NAME_W 0x%lX: the UTF-16 name, %lu bytes with its NUL; "
          "_A 0x%lX: \"%s\", %lu bytes", (unsigned long)w, wide_length, (unsigned long)a, escaped(ansi), ansi_length);
    SCardDisconnect(card, SCARD_LEAVE_CARD);
}

static void no_context(SCARDCONTEXT context)
{
    DWORD with = 0, without = 0;
    LONG rv = SCardListReadersW(context, NULL, NULL, &with);
    LONG rv2 = SCardListReadersW(0, NULL, NULL, &without);
    check(rv == 0 && rv2 == 0 && with == without && with > 0, "no_context",
          "SCardListReadersW without a context (WinSCard uses one of its own): 0x%lX, %lu characters as with one",
          (unsigned long)rv2, without);
}

static void reader_groups(SCARDCONTEXT context)
{
    WCHAR groups[256];
    char groups_a[256];
    DWORD n = ARRAYSIZE(groups), n_a = sizeof groups_a;
    LONG w = SCardListReaderGroupsW(context, groups, &n);
    LONG a = SCardListReaderGroupsA(context, groups_a, &n_a);
    check(w == 0 && a == 0 && multi_string_has_w(groups, L"SCard$DefaultReaders")
              && multi_string_has_a(groups_a, "SCard$DefaultReaders") && n == n_a,
          "reader_groups", "SCardListReaderGroupsW 0x%lX and A 0x%lX: SCard$DefaultReaders, %lu characters",
          (unsigned long)w, (unsigned long)a, n);
}

static void autoallocate(SCARDCONTEXT context)
{
    WCHAR *readers = NULL, *name = NULL, *unfreed = NULL;
    BYTE *atr = NULL, one_byte[1];
    DWORD n = SCARD_AUTOALLOCATE, needed = 0, small = 4, name_length = SCARD_AUTOALLOCATE,
          atr_length = SCARD_AUTOALLOCATE, unfreed_length = SCARD_AUTOALLOCATE, one = sizeof one_byte;
    WCHAR tiny[4];
    SCARDHANDLE card;
    LONG query = SCardListReadersW(context, NULL, NULL, &needed);
    LONG allocated = SCardListReadersW(context, NULL, (LPWSTR)&readers, &n);
    LONG short_buffer = SCardListReadersW(context, NULL, tiny, &small);
    DWORD protocol;
    LONG connected = SCardConnectW(context, L"Lab A 00 00", SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &card, &protocol);
    LONG status = connected ? connected
                            : SCardStatusW(card, (LPWSTR)&name, &name_length, NULL, NULL, (LPBYTE)&atr, &atr_length);
    /* A failing call leaves nothing allocated for the caller to free. */
    LONG short_atr = connected ? connected
                               : SCardStatusW(card, (LPWSTR)&unfreed, &unfreed_length, NULL, NULL, one_byte, &one);
    BOOL ok = query == 0 && allocated == 0 && readers && n == needed && readers[n - 1] == 0 && readers[n - 2] == 0
              && short_buffer == SCARD_E_INSUFFICIENT_BUFFER && small == needed && status == 0 && name
              && wcscmp(name, L"Lab A 00 00") == 0 && atr_length == 4 && atr[0] == 0x3B
              && short_atr == SCARD_E_INSUFFICIENT_BUFFER && one == 4 && !unfreed;
    LONG freed = SCardFreeMemory(context, readers);
    freed |= SCardFreeMemory(context, name) | SCardFreeMemory(context, atr);
    check(ok && freed == 0, "autoallocate", "SCardListReadersW: %lu characters by query and by SCARD_AUTOALLOCATE, "
          "a 4-character buffer 0x%lX (SCARD_E_INSUFFICIENT_BUFFER) asking %lu; SCardStatusW allocated name and "
          "%lu-byte ATR; SCardFreeMemory 0x%lX; with a 1-byte ATR buffer 0x%lX and the allocated name %s",
          needed, (unsigned long)short_buffer, small, atr_length, (unsigned long)freed, (unsigned long)short_atr,
          unfreed ? "LEFT" : "freed");
    if (connected == 0)
        SCardDisconnect(card, SCARD_LEAVE_CARD);
}

static void codes(SCARDCONTEXT context)
{
    SCARDHANDLE card;
    DWORD protocol, n = 64;
    BYTE buffer[64];
    LONG connected = SCardConnectW(context, L"Lab A 00 00", SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &card, &protocol);
    LONG attribute = SCardGetAttrib(card, SCARD_ATTR_ATR_STRING, buffer, &n);
    LONG not_transacted = SCardEndTransaction(card, SCARD_LEAVE_CARD);
    LONG unknown = SCardConnectW(context, L"No such reader", SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &card, &protocol);
    check(connected == 0 && (DWORD)SCARD_E_UNSUPPORTED_FEATURE == 0x80100022u && attribute == SCARD_E_UNSUPPORTED_FEATURE
              && not_transacted == SCARD_E_NOT_TRANSACTED && unknown == SCARD_E_UNKNOWN_READER,
          "codes", "SCARD_ATTR_ATR_STRING: 0x%08lX (SCARD_E_UNSUPPORTED_FEATURE 0x80100022), end without a "
          "transaction 0x%08lX, unknown reader 0x%08lX", (unsigned long)attribute, (unsigned long)not_transacted,
          (unsigned long)unknown);
    SCardDisconnect(card, SCARD_LEAVE_CARD);
}

static void control_code(SCARDCONTEXT context)
{
    SCARDHANDLE card;
    DWORD protocol, returned = 0;
    BYTE out[256];
    char seen[64];
    LONG connected = SCardConnectW(context, L"Lab A 00 00", SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &card, &protocol);
    LONG rv = SCardControl(card, SCARD_CTL_CODE(3400), NULL, 0, out, sizeof out, &returned);
    snprintf(seen, sizeof seen, "%s", ask("last-control"));
    check(connected == 0 && SCARD_CTL_CODE(3400) == 0x00313520 && strcmp(seen, "ok 0x42000D48") == 0,
          "control_code", "SCARD_CTL_CODE(3400) = 0x%08lX reached pcscd as \"%s\" (pcsc-lite's 0x42000000 + 3400); "
          "the vpcd reader answered 0x%08lX", (unsigned long)SCARD_CTL_CODE(3400), seen, (unsigned long)rv);
    SCardDisconnect(card, SCARD_LEAVE_CARD);
}

static void transmit(SCARDCONTEXT context)
{
    static const BYTE echo[] = { 0x80, 0x10, 0x00, 0x00, 0x02, 0xCA, 0xFE, 0x00 };
    static const BYTE read255[] = { 0x80, 0x20, 0x00, 0xFF, 0x00 };
    SCARDHANDLE card;
    SCARD_IO_REQUEST received = { 0 };
    BYTE response[300];
    DWORD protocol, n = sizeof response, n255 = sizeof response;
    LONG rv = SCardConnectW(context, L"Lab A 00 00", SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &card, &protocol);
    LONG rv1 = rv ? rv : SCardTransmit(card, SCARD_PCI_T1, echo, sizeof echo, &received, response, &n);
    BOOL echoed = rv1 == 0 && n == 4 && response[0] == 0xCA && response[3] == 0x00;
    LONG rv2 = rv ? rv : SCardTransmit(card, SCARD_PCI_T1, read255, sizeof read255, NULL, response, &n255);
    check(echoed && received.dwProtocol == 2 && rv2 == 0 && n255 == 257 && response[254] == 0xFE,
          "transmit", "ECHO 2 bytes: 0x%lX, %lu bytes back, recv PCI protocol %lu; READ 255: 0x%lX, %lu bytes",
          (unsigned long)rv1, n, received.dwProtocol, (unsigned long)rv2, n255);
    SCardDisconnect(card, SCARD_LEAVE_CARD);
}

/* A command larger than the bridge carries fails alone; the context goes on working. */
static void oversized_command(SCARDCONTEXT context)
{
    static const BYTE echo[] = { 0x80, 0x10, 0x00, 0x00, 0x01, 0x5A, 0x00 };
    enum { HUGE_COMMAND = 2 << 20 };
    BYTE *command = calloc(HUGE_COMMAND, 1), response[16];
    SCARDHANDLE card;
    DWORD protocol, n = sizeof response, n_echo = sizeof response, listed = 0;
    LONG rv = SCardConnectW(context, L"Lab A 00 00", SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &card, &protocol);
    LONG huge = rv ? rv : SCardTransmit(card, SCARD_PCI_T1, command, HUGE_COMMAND, NULL, response, &n);
    LONG after = rv ? rv : SCardTransmit(card, SCARD_PCI_T1, echo, sizeof echo, NULL, response, &n_echo);
    LONG listing = SCardListReadersW(context, NULL, NULL, &listed);
    check(command && huge == SCARD_E_INVALID_PARAMETER && after == 0 && n_echo == 3 && listing == 0,
          "oversized_command", "a %d-byte command: 0x%08lX (SCARD_E_INVALID_PARAMETER); then ECHO on the same card "
          "0x%lX, SCardListReadersW 0x%lX", HUGE_COMMAND, (unsigned long)huge, (unsigned long)after,
          (unsigned long)listing);
    SCardDisconnect(card, SCARD_LEAVE_CARD);
    free(command);
}

typedef struct {
    LONG(WINAPI *call)(SCARDCONTEXT);
    SCARDCONTEXT context;
    SCARDHANDLE card;
    SCARD_READERSTATEW state;
    LONG rv;
    DWORD took_ms;
    HANDLE done;
} worker_t;

static DWORD WINAPI begin_worker(LPVOID parameter)
{
    worker_t *w = parameter;
    DWORD start = GetTickCount();
    w->rv = SCardBeginTransaction(w->card);
    w->took_ms = GetTickCount() - start;
    SetEvent(w->done);
    return 0;
}

static DWORD WINAPI status_change_worker(LPVOID parameter)
{
    worker_t *w = parameter;
    DWORD start = GetTickCount();
    w->rv = SCardGetStatusChangeW(w->context, INFINITE, &w->state, 1);
    w->took_ms = GetTickCount() - start;
    SetEvent(w->done);
    return 0;
}

static void blocked_transaction(void)
{
    SCARDCONTEXT holder = establish(), waiter = establish(), other = establish();
    SCARDHANDLE held;
    worker_t w = { 0 };
    DWORD protocol, n = 0, state = 0, start, other_ms, waited;
    LONG began, during, still, ended;
    SCardConnectW(holder, L"Lab A 00 00", SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &held, &protocol);
    SCardConnectW(waiter, L"Lab A 00 00", SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &w.card, &protocol);
    began = SCardBeginTransaction(held);
    w.done = CreateEventW(NULL, TRUE, FALSE, NULL);
    CloseHandle(CreateThread(NULL, 0, begin_worker, &w, 0, NULL));
    Sleep(300);
    /* Another context's calls go on while the waiter is blocked in pcscd. */
    start = GetTickCount();
    during = SCardListReadersW(other, NULL, NULL, &n);
    during |= SCardStatusW(held, NULL, &n, &state, NULL, NULL, NULL);
    other_ms = GetTickCount() - start;
    still = WaitForSingleObject(w.done, 700) == WAIT_TIMEOUT;
    ended = SCardEndTransaction(held, SCARD_LEAVE_CARD);
    waited = WaitForSingleObject(w.done, 10000);
    check(began == 0 && during == 0 && other_ms < 1000 && still && ended == 0 && waited == WAIT_OBJECT_0 && w.rv == 0,
          "blocked_transaction", "holder began 0x%lX; waiter blocked %s; other calls meanwhile 0x%lX in %lu ms; "
          "the waiter's SCardBeginTransaction returned 0x%lX after %lu ms, once the holder ended",
          (unsigned long)began, still ? "yes" : "NO", (unsigned long)during, other_ms, (unsigned long)w.rv, w.took_ms);
    SCardEndTransaction(w.card, SCARD_LEAVE_CARD);
    SCardReleaseContext(holder);
    SCardReleaseContext(waiter);
    SCardReleaseContext(other);
    CloseHandle(w.done);
}

/* Starts a thread in an INFINITE SCardGetStatusChangeW on `context` for a reader whose state
 * will not change, and gives it time to block. */
static void start_waiting(worker_t *w, SCARDCONTEXT context)
{
    w->context = context;
    w->state.szReader = L"Lab A 00 00";
    w->state.dwCurrentState = SCARD_STATE_UNAWARE;
    SCardGetStatusChangeW(w->context, 0, &w->state, 1);
    w->state.dwCurrentState = w->state.dwEventState;
    w->done = CreateEventW(NULL, TRUE, FALSE, NULL);
    CloseHandle(CreateThread(NULL, 0, status_change_worker, w, 0, NULL));
    Sleep(500);
}

static void cancel(void)
{
    worker_t w = { 0 };
    LONG cancelled;
    DWORD waited;
    start_waiting(&w, establish());
    cancelled = SCardCancel(w.context);
    waited = WaitForSingleObject(w.done, 5000);
    check(cancelled == 0 && waited == WAIT_OBJECT_0 && w.rv == SCARD_E_CANCELLED, "cancel",
          "SCardCancel 0x%lX ended an INFINITE SCardGetStatusChangeW after %lu ms with 0x%08lX (SCARD_E_CANCELLED)",
          (unsigned long)cancelled, w.took_ms, (unsigned long)w.rv);
    SCardReleaseContext(w.context);
    CloseHandle(w.done);
}

/* Runs w->call (SCardReleaseContext, SCardIsValidContext) on w->context. */
static DWORD WINAPI context_worker(LPVOID parameter)
{
    worker_t *w = parameter;
    w->rv = w->call(w->context);
    return 0;
}

/* Releasing a context while another thread waits on it ends the wait; it never hangs. */
static void release_during_wait(void)
{
    worker_t w = { 0 }, releaser = { .call = SCardReleaseContext };
    HANDLE thread;
    DWORD waited, released;
    start_waiting(&w, releaser.context = establish());
    thread = CreateThread(NULL, 0, context_worker, &releaser, 0, NULL);
    released = WaitForSingleObject(thread, 5000);
    waited = WaitForSingleObject(w.done, 5000);
    check(released == WAIT_OBJECT_0 && releaser.rv == 0 && waited == WAIT_OBJECT_0 && w.rv == SCARD_E_CANCELLED
              && SCardIsValidContext(w.context) == SCARD_E_INVALID_HANDLE,
          "release_during_wait", "SCardReleaseContext from another thread %s (0x%lX); the INFINITE "
          "SCardGetStatusChangeW ended after %lu ms with 0x%08lX (SCARD_E_CANCELLED)",
          released == WAIT_OBJECT_0 ? "returned" : "HUNG", (unsigned long)releaser.rv, w.took_ms,
          (unsigned long)w.rv);
    CloseHandle(thread);
    CloseHandle(w.done);
}

/* A released context's handle is refused at once, even while a call on the context that took
 * its place in the bridge's table is blocked. */
static void stale_context(void)
{
    worker_t w = { 0 }, probe = { .call = SCardIsValidContext }, releaser = { .call = SCardReleaseContext };
    HANDLE threads[2];
    DWORD answered;
    probe.context = releaser.context = establish();
    SCardReleaseContext(probe.context);
    start_waiting(&w, establish());
    threads[0] = CreateThread(NULL, 0, context_worker, &probe, 0, NULL);
    threads[1] = CreateThread(NULL, 0, context_worker, &releaser, 0, NULL);
    answered = WaitForMultipleObjects(2, threads, TRUE, 3000);
    SCardCancel(w.context);
    WaitForSingleObject(w.done, 5000);
    check(answered == WAIT_OBJECT_0 && probe.rv == SCARD_E_INVALID_HANDLE && releaser.rv == SCARD_E_INVALID_HANDLE,
          "stale_context", "while another context waits: SCardIsValidContext 0x%08lX and SCardReleaseContext 0x%08lX "
          "on a released context (SCARD_E_INVALID_HANDLE), %s", (unsigned long)probe.rv, (unsigned long)releaser.rv,
          answered == WAIT_OBJECT_0 ? "at once" : "NOT within 3 s");
    SCardReleaseContext(w.context);
    CloseHandle(threads[0]);
    CloseHandle(threads[1]);
    CloseHandle(w.done);
}

static void pnp_notification(SCARDCONTEXT context)
{
    SCARD_READERSTATEW state = { 0 };
    LONG rv;
    state.szReader = L"\\\\?PnP?\\Notification";
    state.dwCurrentState = SCARD_STATE_UNAWARE;
    rv = SCardGetStatusChangeW(context, 0, &state, 1);
    check((rv == 0 || rv == SCARD_E_TIMEOUT) && !(state.dwEventState & SCARD_STATE_UNKNOWN), "pnp_notification",
          "\\\\?PnP?\\Notification: 0x%lX, event state 0x%lX", (unsigned long)rv, state.dwEventState);
}

static void started_event(void)
{
    HANDLE event = SCardAccessStartedEvent();
    DWORD waited = event ? WaitForSingleObject(event, 0) : WAIT_FAILED;
    check(event && waited == WAIT_OBJECT_0, "started_event", "SCardAccessStartedEvent gave a signalled event");
    SCardReleaseStartedEvent();
}

static void released_handles(void)
{
    SCARDCONTEXT context = establish();
    SCARDHANDLE card;
    DWORD protocol, n = 0;
    LONG connected = SCardConnectW(context, L"Lab A 00 00", SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &card, &protocol);
    LONG released = SCardReleaseContext(context);
    LONG valid = SCardIsValidContext(context);
    LONG status = SCardStatusW(card, NULL, &n, NULL, NULL, NULL, NULL);
    LONG forged = SCardIsValidContext((SCARDCONTEXT)0x1234);
    check(connected == 0 && released == 0 && valid == SCARD_E_INVALID_HANDLE && status == SCARD_E_INVALID_HANDLE
              && forged == SCARD_E_INVALID_HANDLE,
          "released_handles", "after SCardReleaseContext: the context 0x%lX, its card 0x%lX, a forged one 0x%lX "
          "(SCARD_E_INVALID_HANDLE)", (unsigned long)valid, (unsigned long)status, (unsigned long)forged);
}

static void daemon_restart(void)
{
    static const BYTE echo[] = { 0x80, 0x10, 0x00, 0x00, 0x01, 0x5A, 0x00 };
    SCARDCONTEXT old = establish(), fresh;
    SCARDHANDLE card, again;
    BYTE response[16];
    DWORD protocol, n = sizeof response, listed = 0;
    LONG old_call, new_call = -1;
    char reply[64];
    SCardConnectW(old, L"Lab A 00 00", SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &card, &protocol);
    snprintf(reply, sizeof reply, "%s", ask("restart"));
    old_call = SCardTransmit(card, SCARD_PCI_T1, echo, sizeof echo, NULL, response, &n);
    old_call = old_call ? old_call : SCardListReadersW(old, NULL, NULL, &listed);
    fresh = establish();
    if (SCardConnectW(fresh, L"Lab A 00 00", SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &again, &protocol) == 0) {
        n = sizeof response;
        new_call = SCardTransmit(again, SCARD_PCI_T1, echo, sizeof echo, NULL, response, &n);
    }
    check(strcmp(reply, "ok") == 0 && old_call != 0 && new_call == 0 && n == 3, "daemon_restart",
          "pcscd restarted (%s): the old context's calls fail with 0x%08lX, a new context transmits: 0x%lX",
          reply, (unsigned long)old_call, (unsigned long)new_call);
    SCardReleaseContext(old);
    SCardReleaseContext(fresh);
}

static int compare_ticks(const void *a, const void *b)
{
    LONGLONG x = *(const LONGLONG *)a, y = *(const LONGLONG *)b;
    return x < y ? -1 : x > y;
}

/* The median time of `rounds` calls of SCardTransmit (ECHO) and of SCardStatusW, in µs. */
static void latency(SCARDCONTEXT context)
{
    enum { ROUNDS = 500 };
    static const BYTE echo[] = { 0x80, 0x10, 0x00, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x00 };
    static LONGLONG transmit_ticks[ROUNDS], status_ticks[ROUNDS];
    LARGE_INTEGER frequency, t0, t1, t2;
    SCARDHANDLE card;
    BYTE response[16];
    DWORD protocol, n, state, name_length;
    LONG rv = SCardConnectW(context, L"Lab A 00 00", SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &card, &protocol);
    QueryPerformanceFrequency(&frequency);
    for (int i = 0; rv == 0 && i < ROUNDS; i++) {
        n = sizeof response;
        QueryPerformanceCounter(&t0);
        rv = SCardTransmit(card, SCARD_PCI_T1, echo, sizeof echo, NULL, response, &n);
        QueryPerformanceCounter(&t1);
        rv |= SCardStatusW(card, NULL, &name_length, &state, NULL, NULL, NULL);
        QueryPerformanceCounter(&t2);
        transmit_ticks[i] = (t1.QuadPart - t0.QuadPart) * 1000000 / frequency.QuadPart;
        status_ticks[i] = (t2.QuadPart - t1.QuadPart) * 1000000 / frequency.QuadPart;
    }
    qsort(transmit_ticks, ROUNDS, sizeof transmit_ticks[0], compare_ticks);
    qsort(status_ticks, ROUNDS, sizeof status_ticks[0], compare_ticks);
    /* Tens of ms would mean Nagle's algorithm and delayed ACKs on the bridge's connection. */
    check(rv == 0 && transmit_ticks[ROUNDS / 2] < 10000, "latency",
          "median over %d calls through the bridge: SCardTransmit ECHO %lld us, SCardStatusW %lld us", ROUNDS,
          transmit_ticks[ROUNDS / 2], status_ticks[ROUNDS / 2]);
    SCardDisconnect(card, SCARD_LEAVE_CARD);
}

int main(void)
{
    SCARDCONTEXT context;
    if (!control_open()) {
        printf("FAIL setup: no control channel in SCM_LAB_CONTROL\n");
        return 100;
    }
    if (strcmp(ask("insert 2"), "ok") != 0) {
        printf("FAIL setup: cannot insert a card in reader 2\n");
        return 100;
    }
    context = establish();
    pci_exports();
    widths();
    ordinal_states(context);
    raw_protocol(context);
    wide_names(context);
    ansi_names(context);
    name_attributes(context);
    no_context(context);
    reader_groups(context);
    autoallocate(context);
    codes(context);
    control_code(context);
    transmit(context);
    oversized_command(context);
    reset_by_another(context);
    card_absent(context);
    latency(context);
    pnp_notification(context);
    started_event();
    blocked_transaction();
    cancel();
    release_during_wait();
    stale_context();
    released_handles();
    SCardReleaseContext(context);
    daemon_restart();
    printf("%d failures\n", failures);
    return failures;
}
