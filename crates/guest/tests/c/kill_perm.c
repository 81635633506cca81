/* kill reaches the sender's own descendants only: a grandparent may kill
 * its grandchild; a child may not signal its parent or its sibling (EPERM),
 * and the target lives on. (Natively the child drops root first, so that
 * Linux refuses too; run natively as root.) */
#include "common.h"

int main(void) {
    setup();
    CHECK(signal(SIGUSR1, SIG_IGN) != SIG_ERR);

    /* A sibling that waits for a byte, then exits 4. */
    int hold[2];
    CHECK(pipe(hold) == 0);
    fflush(stdout);
    pid_t sibling = fork();
    CHECK(sibling >= 0);
    if (sibling == 0) {
        close(hold[1]);
        char c;
        read(hold[0], &c, 1);
        _exit(4);
    }
    close(hold[0]);

    pid_t parent = getpid();
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
#ifndef __wasi__
        if (geteuid() == 0 && setuid(65534) != 0) {
            printf("cannot drop root\n");
            _exit(1);
        }
#endif
        errno = 0;
        int r = kill(parent, SIGTERM);
        printf("child kills its parent: %d %s\n", r, ename(errno));
        errno = 0;
        r = kill(sibling, SIGTERM);
        printf("child kills its sibling: %d %s\n", r, ename(errno));
        errno = 0;
        r = kill(getpid(), SIGUSR1);
        printf("child signals itself: %d %s\n", r, ename(errno));
        _exit(0);
    }
    printf("child: %s\n", reap(pid));
    CHECK(write(hold[1], "x", 1) == 1);
    printf("sibling survived: %s\n", reap(sibling));

    /* A grandchild, killed by its grandparent. */
    int report[2];
    CHECK(pipe(report) == 0);
    fflush(stdout);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(report[0]);
        pid_t grandchild = fork();
        CHECK(grandchild >= 0);
        if (grandchild == 0) {
            for (;;)
                pause();
        }
        write_all(report[1], &grandchild, sizeof grandchild);
        int status;
        CHECK(waitpid(grandchild, &status, 0) == grandchild);
        _exit(WIFSIGNALED(status) ? 100 + WTERMSIG(status) : 1);
    }
    close(report[1]);
    pid_t grandchild;
    CHECK(read(report[0], &grandchild, sizeof grandchild) == (ssize_t)sizeof grandchild);
    printf("grandparent kills the grandchild: %d\n", kill(grandchild, SIGTERM));
    printf("middle process: %s (100 + SIGTERM = %d)\n", reap(pid), 100 + SIGTERM);
    return 0;
}
