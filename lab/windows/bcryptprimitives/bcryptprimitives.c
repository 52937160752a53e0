/*
 * bcryptprimitives.dll for Wine 8.0, which lacks it: Rust's standard library on Windows
 * imports ProcessPrng from it for every random number (HashMap seeds first), so no Rust
 * program starts under Wine 8.0 without this. Test support only; never shipped.
 *
 * ProcessPrng is documented to always succeed; RtlGenRandom (advapi32's SystemFunction036)
 * is the documented way to get the same system randomness on every Windows and Wine.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    /* RtlGenRandom takes a ULONG: feed a SIZE_T length in pieces. */
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
