/* The program's own PC/SC connection: what "another program" or the owner of a borrowed handle
   does. On Windows through WinSCard's W entry point (the bridge under Wine), elsewhere through
   pcsc-lite. */
#ifdef _WIN32
#include <windows.h>
#endif
#include <winscard.h>

#include <string.h>

#include "check.h"

int32_t raw_connect(struct raw_conn *c, const char *utf8_name)
{
    SCARDCONTEXT context;
    SCARDHANDLE card;
    DWORD protocol;
    LONG rv = SCardEstablishContext(SCARD_SCOPE_USER, NULL, NULL, &context);
    if (rv != SCARD_S_SUCCESS)
        return (int32_t)rv;
#ifdef _WIN32
    {
        uint16_t units[1024];
        WCHAR name[1024];
        size_t i;
        if (!utf8_to_utf16(utf8_name, units, 1024)) {
            SCardReleaseContext(context);
            return (int32_t)SCARD_E_INVALID_PARAMETER;
        }
        for (i = 0; i == 0 || units[i - 1] != 0; i++)
            name[i] = units[i];
        rv = SCardConnectW(context, name, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &card, &protocol);
    }
#else
    rv = SCardConnect(context, utf8_name, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &card, &protocol);
#endif
    if (rv != SCARD_S_SUCCESS) {
        SCardReleaseContext(context);
        return (int32_t)rv;
    }
    c->context = (uintptr_t)context;
    c->card = (uintptr_t)card;
    return 0;
}

int32_t raw_echo(struct raw_conn *c, const char *text)
{
    uint8_t apdu[300], response[300];
    DWORD len = sizeof response;
    size_t n = strlen(text);
    LONG rv = SCardTransmit((SCARDHANDLE)c->card, SCARD_PCI_T1, apdu, (DWORD)echo_apdu(text, apdu), NULL, response,
                            &len);
    if (rv != SCARD_S_SUCCESS)
        return (int32_t)rv;
    /* A wrong answer is no PC/SC code: E_FAIL says so. */
    if (len != n + 2 || memcmp(response, text, n) != 0 || response[n] != 0x90 || response[n + 1] != 0x00)
        return SCM_E_FAIL;
    return 0;
}

int32_t raw_reset(struct raw_conn *c)
{
    DWORD protocol;
    return (int32_t)SCardReconnect((SCARDHANDLE)c->card, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1,
                                   SCARD_RESET_CARD, &protocol);
}

void raw_close(struct raw_conn *c)
{
    SCardDisconnect((SCARDHANDLE)c->card, SCARD_LEAVE_CARD);
    SCardReleaseContext((SCARDCONTEXT)c->context);
}
