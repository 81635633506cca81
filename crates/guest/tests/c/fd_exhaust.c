/* Pipes until descriptors run out: the program is refused (EMFILE natively,
 * ENFILE under warden, whose budget for guests is the whole run's), and
 * fork, wait and signals still work with the table full. Run with a low
 * RLIMIT_NOFILE (the test uses 1024). */
#include "common.h"

static volatile sig_atomic_t got;

static void on_usr1(int sig) {
    (void)sig;
    got = 1;
}

int main(int argc, char **argv) {
    setup();
    CHECK(argc == 3);
    (void)argv;
    int p[2], n = 0, last = -1;
    while (pipe(p) == 0) {
        n++;
        last = p[1];
    }
    int e = errno;
    printf("pipe refused with: %s\n", (e == EMFILE || e == ENFILE) ? "EMFILE or ENFILE" : ename(e));
    printf("more than 100 pipes first: %s\n", n > 100 ? "yes" : "no");

    /* A child blocked reading a pipe nobody writes is still woken by a
     * signal (under warden that takes a descriptor of warden's own). */
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        char c;
        (void)read(last - 1, &c, 1);
        _exit(7);
    }
    usleep(200 * 1000);
    CHECK(kill(pid, SIGTERM) == 0);
    printf("blocked child: %s\n", reap(pid));

    signal(SIGUSR1, on_usr1);
    CHECK(kill(getpid(), SIGUSR1) == 0);
    printf("handler ran: %s\n", got ? "yes" : "no");

    /* Closing a pipe gives its descriptors back. */
    close(last);
    close(last - 1);
    printf("pipe after close: %s\n", pipe(p) == 0 ? "OK" : ename(errno));
    return 0;
}
