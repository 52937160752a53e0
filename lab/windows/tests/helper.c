/* A DLL found only through SCM_WINDOWS_DLL_DIR, as scardmanage.dll is (see runtime.c). */
__declspec(dllexport) int helper_answer(void)
{
    return 42;
}
