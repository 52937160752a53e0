/*
 * What a Windows program run by `scm-lab run --windows` gets besides WinSCard (run by
 * lab/tests/windows.rs with --friendly "0=<NAME>" and SCM_WINDOWS_DLL_DIR naming the folder
 * of helper.dll): the lab's environment in UTF-16, ProcessPrng for Rust's standard library, and
 * DLLs from SCM_WINDOWS_DLL_DIR. Exits with 42 (helper.dll's answer) when all hold.
 */
#include <windows.h>
#include <stdio.h>
#include <string.h>

__declspec(dllimport) int helper_answer(void);

typedef BOOL(WINAPI *process_prng_t)(PBYTE, SIZE_T);

static const WCHAR FRIENDLY_READER[] = L"Lecteur \u00e9\u20ac \u65e5\u672c \U0001D11E 00 00";

int main(void)
{
    WCHAR reader[256];
    BYTE a[32] = { 0 }, b[32] = { 0 };
    DWORD n = GetEnvironmentVariableW(L"SCM_LAB_READER", reader, ARRAYSIZE(reader));
    BOOL environment = n == wcslen(FRIENDLY_READER) && wcscmp(reader, FRIENDLY_READER) == 0;
    HMODULE module = LoadLibraryW(L"bcryptprimitives.dll");
    process_prng_t prng = module ? (process_prng_t)(void *)GetProcAddress(module, "ProcessPrng") : NULL;
    BOOL random = prng && prng(a, sizeof a) && prng(b, sizeof b) && memcmp(a, b, sizeof a) != 0;
    int answer = helper_answer();
    printf("%s environment: SCM_LAB_READER read as UTF-16 is the lab's non-ASCII reader name (%lu units)\n",
           environment ? "ok" : "FAIL", n);
    printf("%s process_prng: bcryptprimitives.dll's ProcessPrng gave two different 32-byte draws\n",
           random ? "ok" : "FAIL");
    printf("ok dll_dir: helper.dll loaded from SCM_WINDOWS_DLL_DIR, answered %d\n", answer);
    return environment && random ? answer : 1;
}
