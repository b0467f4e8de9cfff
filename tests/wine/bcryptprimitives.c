/*
 * Test-only shim for Wine 8 (Debian bookworm): Rust's standard library (1.78 and later)
 * imports ProcessPrng from bcryptprimitives.dll, which every supported Windows (10 and later)
 * has but Wine only gained in 9.x. This DLL is placed next to the .exe inside the throwaway
 * Wine prefix of tests/wine/run.sh and never shipped. It forwards to BCryptGenRandom, which
 * Wine 8 implements.
 */
#include <windows.h>
#include <bcrypt.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (BCryptGenRandom(NULL, data, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0)
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, LPVOID reserved)
{
    (void)inst;
    (void)reason;
    (void)reserved;
    return TRUE;
}
