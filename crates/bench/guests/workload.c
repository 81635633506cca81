/*
 * The workloads of the issue-2 benchmark, one program with a mode argument.
 * Built twice by the bench at run time: `clang --target=wasm32-wasi -O2`
 * (run on warden and on wasmtime-wasi) and `gcc -O2` (the native limit).
 * Every mode exits 0 only if each call did what it should, so a fast but
 * failing run is never counted.
 *
 *   workload hello               puts("hello, world")
 *   workload write N             N x write(1, "x", 1): one fd_write each
 *   workload read PATH SIZE      read PATH in 64 KiB chunks; SIZE bytes expected
 *   workload open PATH N         N x open(PATH, O_RDONLY) + close
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (64 * 1024)

static char chunk[CHUNK];

static long long number(const char *text) {
    char *end;
    long long n = strtoll(text, &end, 10);
    return (*text && !*end && n >= 0) ? n : -1;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "hello")) {
        return puts("hello, world") < 0;
    }
    if (argc == 3 && !strcmp(argv[1], "write")) {
        long long n = number(argv[2]);
        if (n < 0)
            return 2;
        for (long long i = 0; i < n; i++) {
            if (write(1, "x", 1) != 1)
                return 1;
        }
        return 0;
    }
    if (argc == 4 && !strcmp(argv[1], "read")) {
        long long expected = number(argv[3]);
        int fd = open(argv[2], O_RDONLY);
        if (expected < 0 || fd < 0)
            return 2;
        long long total = 0;
        unsigned sum = 0;
        for (;;) {
            ssize_t got = read(fd, chunk, CHUNK);
            if (got < 0)
                return 1;
            if (got == 0)
                break;
            sum += (unsigned char)chunk[got - 1];
            total += got;
        }
        close(fd);
        /* `sum` keeps the data observed; a pattern file has non-zero bytes. */
        return (total == expected && (expected == 0 || sum != 0)) ? 0 : 1;
    }
    if (argc == 4 && !strcmp(argv[1], "open")) {
        long long n = number(argv[3]);
        if (n < 0)
            return 2;
        for (long long i = 0; i < n; i++) {
            int fd = open(argv[2], O_RDONLY);
            if (fd < 0)
                return 1;
            if (close(fd) != 0)
                return 1;
        }
        return 0;
    }
    fprintf(stderr, "usage: workload hello | write N | read PATH SIZE | open PATH N\n");
    return 2;
}
