/* SIGCHLD: ignored by default; with a handler, delivered when children
 * end, and the handler can reap them. */
#include "common.h"

static volatile sig_atomic_t chld, reaped, codes;

static void on_chld(int sig) {
    (void)sig;
    int saved = errno;
    chld++;
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        reaped++;
        if (WIFEXITED(status))
            codes += WEXITSTATUS(status);
    }
    errno = saved;
}

int main(void) {
    setup();
    /* Default: the parent is not disturbed. */
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        _exit(1);
    msleep(50);
    printf("default SIGCHLD: parent alive, child %s\n", reap(pid));

    CHECK(signal(SIGCHLD, on_chld) != SIG_ERR);
    for (int i = 1; i <= 3; i++) {
        fflush(stdout);
        pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            msleep(10 * i);
            _exit(i);
        }
    }
    int waited = 0;
    while (reaped < 3 && waited < 5000) {
        msleep(10);
        waited += 10;
    }
    printf("handler ran: %s, reaped %d, sum of codes %d\n", yes(chld >= 1), (int)reaped,
           (int)codes);
    printf("then wait: %s\n", OUTCOME(wait(NULL)));
    return 0;
}
