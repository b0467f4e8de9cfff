/*
 * Test helper for tests/wine/run.sh: prints what a Windows program sees as the time since
 * boot, in whole seconds, from the two clocks Rust's std and the shipper use:
 *   ticks=<GetTickCount64 / 1000> qpc=<QueryPerformanceCounter / QueryPerformanceFrequency>
 * (std's Instant is QueryPerformanceCounter). run.sh requires both to be small: the test
 * runs on a freshly booted machine.
 */
#include <windows.h>
#include <stdio.h>

int main(void)
{
    LARGE_INTEGER c, f;
    if (!QueryPerformanceCounter(&c) || !QueryPerformanceFrequency(&f) || f.QuadPart == 0) {
        fprintf(stderr, "uptime: QueryPerformanceCounter failed\n");
        return 1;
    }
    printf("ticks=%llu qpc=%lld\n", (unsigned long long)(GetTickCount64() / 1000),
           (long long)(c.QuadPart / f.QuadPart));
    return 0;
}
