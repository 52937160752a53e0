/* Test support for Wine 8.0, which has no bcryptprimitives.dll: Rust's standard library imports
 * ProcessPrng from it for its random numbers (HashMap keys), so no Rust program loads without it.
 * Windows 10 and later have the real one; this is never shipped. RtlGenRandom (advapi32's
 * SystemFunction036) gives the same kind of bytes, at most a ULONG's worth per call. */
#include <windows.h>
#include <ntsecapi.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!RtlGenRandom(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
