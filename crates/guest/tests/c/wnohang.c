/* WNOHANG: 0 while the child runs, its pid once it has ended; ECHILD when
 * there is no child at all. */
#include "common.h"

int main(void) {
    setup();
    int p[2];
    CHECK(pipe(p) == 0);
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(p[1]);
        char c;
        /* Blocks until the parent closes its end. */
        ssize_t n = read(p[0], &c, 1);
        _exit(n == 0 ? 5 : 6);
    }
    close(p[0]);
    int status = -1;
    pid_t got = waitpid(pid, &status, WNOHANG);
    printf("while running: waitpid WNOHANG returned %d\n", (int)got);
    got = waitpid(-1, &status, WNOHANG);
    printf("while running: waitpid(-1) WNOHANG returned %d\n", (int)got);
    close(p[1]);
    int polls = 0;
    do {
        got = waitpid(pid, &status, WNOHANG);
        if (got == 0)
            msleep(5);
    } while (got == 0 && ++polls < 2000);
    printf("after the child ended: returned the pid: %s, %s\n", yes(got == pid),
           describe(status));
    errno = 0;
    got = waitpid(-1, &status, WNOHANG);
    printf("no children: WNOHANG %d %s\n", (int)got, ename(errno));
    return 0;
}
