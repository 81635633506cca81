/* Pipes: blocking reads see end-of-file once every writer is closed;
 * O_NONBLOCK gives EAGAIN; at least 64 KiB fit; poll reports readiness. */
#include "common.h"
#include <poll.h>

static int poll1(int fd, short events, int timeout) {
    struct pollfd p = {.fd = fd, .events = events, .revents = 0};
    int n = poll(&p, 1, timeout);
    CHECK(n >= 0);
    return n == 0 ? 0 : p.revents;
}

int main(void) {
    setup();

    /* Two writers in two children; EOF only when both (and the parent's
     * copy) are closed. */
    int p[2];
    CHECK(pipe(p) == 0);
    fflush(stdout);
    for (int i = 0; i < 2; i++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            msleep(20 * i);
            write_all(p[1], i == 0 ? "hello " : "world", i == 0 ? 6 : 5);
            _exit(0);
        }
    }
    close(p[1]);
    char buf[64];
    size_t total = 0;
    for (;;) {
        ssize_t n = read(p[0], buf + total, sizeof buf - 1 - total);
        CHECK(n >= 0);
        if (n == 0)
            break;
        total += (size_t)n;
    }
    buf[total] = '\0';
    printf("read until EOF: %zu bytes: %s\n", total, buf);
    printf("read at EOF again: %d\n", (int)read(p[0], buf, 1));
    while (wait(NULL) > 0) {
    }
    close(p[0]);

    /* Non-blocking: EAGAIN when empty, when full; 64 KiB fit. */
    CHECK(pipe(p) == 0);
    CHECK(fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK) == 0);
    CHECK(fcntl(p[1], F_SETFL, fcntl(p[1], F_GETFL) | O_NONBLOCK) == 0);
    printf("O_NONBLOCK set: %s\n", yes((fcntl(p[0], F_GETFL) & O_NONBLOCK) != 0));
    printf("empty non-blocking read: %s\n", OUTCOME(read(p[0], buf, 1)));
    printf("poll on empty read end: %d\n", poll1(p[0], POLLIN, 0));
    printf("poll write end: writable: %s\n", yes(poll1(p[1], POLLOUT, 0) & POLLOUT));
    static char chunk[4096];
    size_t written = 0;
    for (;;) {
        for (size_t i = 0; i < sizeof chunk; i++)
            chunk[i] = (char)((written + i) % 251);
        ssize_t n = write(p[1], chunk, sizeof chunk);
        if (n < 0) {
            printf("full pipe: %s\n", ename(errno));
            break;
        }
        written += (size_t)n;
        if (written > (1 << 22))
            break;
    }
    printf("at least 64 KiB buffered: %s\n", yes(written >= 65536));
    printf("poll on a non-empty read end: readable: %s\n",
           yes(poll1(p[0], POLLIN, 0) & POLLIN));
    size_t got = 0;
    int same = 1;
    for (;;) {
        ssize_t n = read(p[0], chunk, sizeof chunk);
        if (n < 0) {
            printf("drained: %s\n", ename(errno));
            break;
        }
        for (ssize_t i = 0; i < n; i++)
            same &= chunk[i] == (char)((got + (size_t)i) % 251);
        got += (size_t)n;
    }
    printf("read back everything written, intact: %s\n", yes(got == written && same));
    close(p[1]);
    printf("poll after the writer closed: readable or hangup: %s\n",
           yes(poll1(p[0], POLLIN, 0) & (POLLIN | POLLHUP)));
    printf("read after the writer closed: %d\n", (int)read(p[0], buf, 1));
    close(p[0]);

    /* poll blocks until a child writes. */
    CHECK(pipe(p) == 0);
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        msleep(50);
        write_all(p[1], "!", 1);
        _exit(0);
    }
    int r = poll1(p[0], POLLIN, 10000);
    printf("poll waited for the child's write: readable: %s\n", yes(r & POLLIN));
    printf("child %s\n", reap(pid));
    return 0;
}
