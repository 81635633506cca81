/* Handlers installed with sigaction and signal run in the process; masks;
 * SA_RESETHAND; a blocking read or pause interrupted by a handled signal
 * returns EINTR, and with SA_RESTART (signal()) the read goes on. */
#include "common.h"

static volatile sig_atomic_t hits, last, info_signo;

static void on_signal(int sig) {
    hits++;
    last = sig;
}

static void on_info(int sig, siginfo_t *info, void *context) {
    (void)context;
    hits++;
    last = sig;
    info_signo = info ? info->si_signo : -1;
}

static int install(int sig, void (*handler)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    return sigaction(sig, &sa, NULL);
}

/* A child that installs `handler` for SIGUSR1, says it is ready and blocks
 * in read (or pause); the parent signals it while it blocks and, after,
 * writes a byte. The child reports what the call returned. */
static void interrupted(const char *what, int use_pause, int restart) {
    int ready[2], data[2];
    CHECK(pipe(ready) == 0 && pipe(data) == 0);
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        close(data[1]);
        hits = 0;
        if (restart)
            CHECK(signal(SIGUSR1, on_signal) != SIG_ERR);
        else
            CHECK(install(SIGUSR1, on_signal, 0) == 0);
        CHECK(write(ready[1], "r", 1) == 1);
        char c = 0;
        errno = 0;
        int r = use_pause ? pause() : (int)read(data[0], &c, 1);
        printf("%s: returned %d %s, handler ran: %s", what, r, ename(errno),
               yes(hits == 1));
        if (r == 1)
            printf(", got '%c'", c);
        printf("\n");
        _exit(0);
    }
    close(ready[1]);
    close(data[0]);
    char c;
    CHECK(read(ready[0], &c, 1) == 1);
    msleep(300); /* by now the child blocks in read or pause */
    CHECK(kill(pid, SIGUSR1) == 0);
    msleep(100);
    write(data[1], "d", 1);
    printf("%s: child %s\n", what, reap(pid));
    close(ready[0]);
    close(data[1]);
}

int main(void) {
    setup();
    /* The parent writes to children's pipes after they may have exited. */
    CHECK(signal(SIGPIPE, SIG_IGN) != SIG_ERR);

    /* raise runs the handler before it returns. */
    CHECK(install(SIGUSR1, on_signal, 0) == 0);
    raise(SIGUSR1);
    printf("raise: handler ran %d time(s), signal %s\n", (int)hits, signame(last));
    kill(getpid(), SIGUSR1);
    printf("kill(self): handler ran %d time(s)\n", (int)hits);

    /* signal() returns the previous handler. */
    void (*prev)(int) = signal(SIGUSR2, on_signal);
    printf("signal: previous was SIG_DFL: %s\n", yes(prev == SIG_DFL));
    prev = signal(SIGUSR2, SIG_IGN);
    printf("signal: previous was the handler: %s\n", yes(prev == on_signal));
    raise(SIGUSR2);
    printf("ignored SIGUSR2: still here, handler count %d\n", (int)hits);

    /* SA_SIGINFO. */
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_info;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGUSR2, &sa, &old) == 0);
    printf("sigaction: old handler was SIG_IGN: %s\n", yes(old.sa_handler == SIG_IGN));
    raise(SIGUSR2);
    printf("SA_SIGINFO: si_signo is SIGUSR2: %s\n", yes(info_signo == SIGUSR2));

    /* SA_RESETHAND: one delivery, then the default again. */
    hits = 0;
    CHECK(install(SIGUSR1, on_signal, SA_RESETHAND) == 0);
    raise(SIGUSR1);
    CHECK(sigaction(SIGUSR1, NULL, &old) == 0);
    printf("SA_RESETHAND: ran %d, handler now SIG_DFL: %s\n", (int)hits,
           yes(old.sa_handler == SIG_DFL));

    /* A blocked signal waits until it is unblocked. */
    hits = 0;
    CHECK(install(SIGUSR1, on_signal, 0) == 0);
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    CHECK(sigprocmask(SIG_BLOCK, &set, NULL) == 0);
    raise(SIGUSR1);
    sigpending(&pending);
    printf("blocked: handler ran %d, pending: %s\n", (int)hits,
           yes(sigismember(&pending, SIGUSR1) == 1));
    CHECK(sigprocmask(SIG_UNBLOCK, &set, NULL) == 0);
    printf("unblocked: handler ran %d\n", (int)hits);

    /* Bad arguments. */
    printf("sigaction(SIGKILL): %s\n", OUTCOME(install(SIGKILL, on_signal, 0)));
    printf("sigaddset(0): %s\n", OUTCOME(sigaddset(&set, 0)));

    interrupted("read, sigaction without SA_RESTART", 0, 0);
    interrupted("read, signal() (SA_RESTART)", 0, 1);
    interrupted("pause", 1, 0);

    /* SIGTERM by default ends a child; a handler keeps it alive. */
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        hits = 0;
        CHECK(install(SIGTERM, on_signal, 0) == 0);
        raise(SIGTERM);
        _exit(hits == 1 ? 10 : 11);
    }
    printf("child with a SIGTERM handler: %s\n", reap(pid));
    return 0;
}
