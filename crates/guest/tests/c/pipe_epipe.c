/* Writing to a pipe nobody reads: EPIPE when SIGPIPE is ignored, death by
 * SIGPIPE by default; a blocked writer wakes when the reader goes. */
#include "common.h"

int main(void) {
    setup();
    int p[2];

    /* SIGPIPE ignored: EPIPE. */
    CHECK(signal(SIGPIPE, SIG_IGN) != SIG_ERR);
    CHECK(pipe(p) == 0);
    close(p[0]);
    printf("write with no reader, SIGPIPE ignored: %s\n", OUTCOME(write(p[1], "x", 1)));
    close(p[1]);

    /* Default SIGPIPE: the writer dies of it. (The read end is closed
     * before the fork, so that no copy of it is left anywhere.) */
    CHECK(pipe(p) == 0);
    close(p[0]);
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL);
        write(p[1], "x", 1);
        _exit(0);
    }
    close(p[1]);
    printf("writer with default SIGPIPE: %s\n", reap(pid));

    /* A writer blocked on a full pipe gets EPIPE once the reader closes. */
    CHECK(pipe(p) == 0);
    fflush(stdout);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        static char chunk[8192];
        memset(chunk, 'z', sizeof chunk);
        size_t total = 0;
        for (;;) {
            ssize_t n = write(p[1], chunk, sizeof chunk);
            if (n < 0) {
                printf("blocked writer: %s after more than 64 KiB: %s\n", ename(errno),
                       yes(total >= 65536));
                _exit(0);
            }
            total += (size_t)n;
            if (total > (1 << 24))
                _exit(1);
        }
    }
    close(p[1]);
    char buf[1000];
    CHECK(read(p[0], buf, sizeof buf) > 0);
    msleep(50);
    close(p[0]);
    printf("blocked writer: %s\n", reap(pid));
    return 0;
}
