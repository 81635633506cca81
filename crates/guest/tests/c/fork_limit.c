/* A fork bomb is contained: run with a process limit (warden:
 * `max_processes` in the config), forks fail with EAGAIN once it is
 * reached, the program goes on, and forks work again once children are
 * reaped.
 *
 * Natively the limit is FORK_LIMIT from the environment, applied by a
 * wrapper around fork below: Linux's RLIMIT_NPROC does not bind root and
 * counts the user's other processes, so it cannot stand in. */
#include "common.h"

#ifndef __wasi__
static int live = 1;
static pid_t limited_fork(void) {
    const char *limit = getenv("FORK_LIMIT");
    if (limit != NULL && live >= atoi(limit)) {
        errno = EAGAIN;
        return -1;
    }
    pid_t pid = fork();
    if (pid > 0)
        live++;
    return pid;
}
static pid_t counted_wait(int *status) {
    pid_t pid = wait(status);
    if (pid > 0)
        live--;
    return pid;
}
#define fork limited_fork
#define wait counted_wait
#endif

int main(void) {
    setup();
    int hold[2];
    CHECK(pipe(hold) == 0);
    int children = 0, failed = 0, error = 0;
    for (int i = 0; i < 1000 && !failed; i++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) {
            failed = 1;
            error = errno;
        } else if (pid == 0) {
            /* Each child blocks until the parent lets go. */
            close(hold[1]);
            char c;
            read(hold[0], &c, 1);
            _exit(0);
        } else {
            children++;
        }
    }
    printf("fork eventually failed: %s, with %s\n", yes(failed), ename(error));
    printf("some children were created: %s\n", yes(children > 0));
    printf("the parent is unaffected: yes\n");
    close(hold[1]);
    int reaped = 0, status;
    while (wait(&status) > 0)
        reaped++;
    printf("every child reaped: %s\n", yes(reaped == children));
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        _exit(9);
    printf("fork works again: %s\n", yes(pid > 0));
    if (pid > 0)
        printf("child: %s\n", reap(pid));
    return 0;
}
