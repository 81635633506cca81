/* FD_CLOEXEC: set with fcntl(F_SETFD) or F_DUPFD_CLOEXEC, read with
 * F_GETFD, cleared by dup2; exec closes exactly the marked descriptors. */
#include "common.h"

int main(int argc, char **argv) {
    setup();
    CHECK(argc == 3);
    int p[2];
    CHECK(pipe(p) == 0);
    printf("new pipe: cloexec=%d/%d\n", fcntl(p[0], F_GETFD), fcntl(p[1], F_GETFD));
    CHECK(fcntl(p[0], F_SETFD, FD_CLOEXEC) == 0);
    printf("after F_SETFD on the read end: cloexec=%d/%d\n", fcntl(p[0], F_GETFD),
           fcntl(p[1], F_GETFD));

    int high = fcntl(p[1], F_DUPFD_CLOEXEC, 20);
    CHECK(high >= 20);
    printf("F_DUPFD_CLOEXEC: at or above 20: yes, cloexec=%d\n", fcntl(high, F_GETFD));

    int low = fcntl(p[1], F_DUPFD, 0);
    CHECK(low >= 0);
    printf("F_DUPFD: cloexec=%d\n", fcntl(low, F_GETFD));

    int copy = 30;
    CHECK(dup2(p[0], copy) == copy);
    printf("dup2 of a cloexec fd: cloexec=%d\n", fcntl(copy, F_GETFD));

    printf("F_GETFD on a closed fd: %s\n", OUTCOME(fcntl(99, F_GETFD)));

    char a[32], b[32], c[32], d[32], e[32], path[512];
    snprintf(a, sizeof a, "marked=%d", p[0]);
    snprintf(b, sizeof b, "unmarked=%d", p[1]);
    snprintf(c, sizeof c, "dupfd_cloexec=%d", high);
    snprintf(d, sizeof d, "dupfd=%d", low);
    snprintf(e, sizeof e, "dup2_copy=%d", copy);
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        execl(join(path, sizeof path, argv[1], "fdcheck"), "fdcheck", a, b, c, d, e,
              (char *)NULL);
        _exit(127);
    }
    printf("fdcheck: child %s\n", reap(pid));
    return 0;
}
