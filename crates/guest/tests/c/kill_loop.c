/* kill ends a child stuck in a loop that makes no system call: SIGKILL and
 * SIGTERM by default; a child ignoring SIGTERM keeps running. */
#include "common.h"

static volatile unsigned long counter;

/* Forks a child that reports ready through a pipe, then spins. */
static pid_t spinner(int ignore_term) {
    int ready[2];
    CHECK(pipe(ready) == 0);
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        if (ignore_term)
            CHECK(signal(SIGTERM, SIG_IGN) != SIG_ERR);
        CHECK(write(ready[1], "r", 1) == 1);
        for (;;)
            counter++;
    }
    close(ready[1]);
    char c;
    CHECK(read(ready[0], &c, 1) == 1);
    close(ready[0]);
    msleep(50); /* well inside the loop by now */
    return pid;
}

int main(void) {
    setup();
    pid_t pid = spinner(0);
    printf("kill SIGKILL: %d\n", kill(pid, SIGKILL));
    printf("spinning child: %s\n", reap(pid));

    pid = spinner(0);
    printf("kill SIGTERM: %d\n", kill(pid, SIGTERM));
    printf("spinning child: %s\n", reap(pid));

    pid = spinner(1);
    printf("kill SIGTERM (ignored): %d\n", kill(pid, SIGTERM));
    msleep(100);
    int status;
    printf("still running after the ignored SIGTERM: %s\n",
           yes(waitpid(pid, &status, WNOHANG) == 0));
    printf("kill SIGKILL: %d\n", kill(pid, SIGKILL));
    printf("spinning child: %s\n", reap(pid));

    printf("kill of the reaped child: %s\n", OUTCOME(kill(pid, SIGTERM)));
    return 0;
}
