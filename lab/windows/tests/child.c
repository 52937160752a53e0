/*
 * Started by cmd.exe inside `scm-lab run --windows -- cmd /c "..."` (lab/tests/windows.rs):
 * a child of one of Wine's own programs still has the lab's WinSCard bridge and reader. Connects
 * to SCM_LAB_READER and prints `ok bridge: ...` with the card's state, or `FAIL bridge: ...`.
 */
#include <windows.h>
#include <winscard.h>
#include <stdio.h>

int main(void)
{
    WCHAR reader[256];
    SCARDCONTEXT context = 0;
    SCARDHANDLE card = 0;
    DWORD protocol = 0, state = 0, atr_length = 0;
    LONG rv = SCARD_E_UNKNOWN_READER;
    DWORD n = GetEnvironmentVariableW(L"SCM_LAB_READER", reader, ARRAYSIZE(reader));
    if (n > 0 && n < ARRAYSIZE(reader)) {
        rv = SCardEstablishContext(SCARD_SCOPE_USER, NULL, NULL, &context);
    }
    if (rv == SCARD_S_SUCCESS) {
        rv = SCardConnectW(context, reader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &card, &protocol);
    }
    if (rv == SCARD_S_SUCCESS) {
        rv = SCardStatusW(card, NULL, NULL, &state, NULL, NULL, &atr_length);
        SCardDisconnect(card, SCARD_LEAVE_CARD);
    }
    if (context) {
        SCardReleaseContext(context);
    }
    /* SCARD_SPECIFIC is 6: WinSCard's ordinal state, which only the bridge gives under Wine. */
    int ok = rv == SCARD_S_SUCCESS && state == SCARD_SPECIFIC;
    printf("%s bridge: a child of cmd.exe connected to the lab's reader: 0x%08lX, state %lu\n", ok ? "ok" : "FAIL",
           (unsigned long)rv, (unsigned long)state);
    return ok ? 0 : 1;
}
