/*
 * Test helper for tests/wine/run.sh. Opens a file for reading with the given share flags
 * (1 = read, 2 = write, 4 = delete) and holds it open until the marker file exists or
 * MAXSECONDS (default 60) pass: the negative control of the share-mode check.
 *   holdopen.exe PATH SHAREFLAGS MARKER [MAXSECONDS]
 * With PATH "-" it opens nothing and just waits: a user process that keeps Wine's
 * services.exe (and the service under test) alive.
 * Prints "open" once the handle is held; exit 1 if the file cannot be opened.
 */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: holdopen PATH SHAREFLAGS MARKER [MAXSECONDS]\n");
        return 2;
    }
    int max_tenths = argc == 5 ? atoi(argv[4]) * 10 : 600;
    HANDLE h = INVALID_HANDLE_VALUE;
    if (strcmp(argv[1], "-") != 0)
        h = CreateFileA(argv[1], GENERIC_READ, (DWORD)strtoul(argv[2], NULL, 0), NULL,
                        OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    if (strcmp(argv[1], "-") != 0 && h == INVALID_HANDLE_VALUE) {
        fprintf(stderr, "holdopen: cannot open %s: error %lu\n", argv[1], GetLastError());
        return 1;
    }
    printf("open\n");
    fflush(stdout);
    for (int i = 0; i < max_tenths; i++) {
        if (GetFileAttributesA(argv[3]) != INVALID_FILE_ATTRIBUTES)
            break;
        Sleep(100);
    }
    if (h != INVALID_HANDLE_VALUE)
        CloseHandle(h);
    return 0;
}
