/*
 * Shared by the process tests of warden's guest library. Every program
 * builds natively with gcc and with `warden cc`, runs both ways, and the
 * test compares stdout and exit code: so programs print relative facts
 * (`child pid > 0: yes`), never pids, paths or errno numbers.
 *
 * Every program is run as `prog BIN SCRATCH`: BIN holds the helper
 * programs to exec (echo_args, upper, fdcheck, pidcheck, notaprog), SCRATCH
 * is an empty directory to write in.
 */
#ifndef WARDEN_PROC_TEST_COMMON_H
#define WARDEN_PROC_TEST_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static __attribute__((unused)) const char *ename(int e) {
    static char buf[32];
    switch (e) {
    case 0: return "OK";
    case EACCES: return "EACCES";
    case EAGAIN: return "EAGAIN";
    case EBADF: return "EBADF";
    case ECHILD: return "ECHILD";
    case EFAULT: return "EFAULT";
    case EINTR: return "EINTR";
    case EINVAL: return "EINVAL";
    case ENOENT: return "ENOENT";
    case ENOEXEC: return "ENOEXEC";
    case ENOSYS: return "ENOSYS";
    case ENOTSUP: return "ENOTSUP";
    case EPERM: return "EPERM";
    case EPIPE: return "EPIPE";
    case ESRCH: return "ESRCH";
    default:
        snprintf(buf, sizeof buf, "errno %d", e);
        return buf;
    }
}

static __attribute__((unused)) const char *signame(int sig) {
    static char buf[32];
    switch (sig) {
    case SIGHUP: return "SIGHUP";
    case SIGINT: return "SIGINT";
    case SIGABRT: return "SIGABRT";
    case SIGKILL: return "SIGKILL";
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
    case SIGPIPE: return "SIGPIPE";
    case SIGALRM: return "SIGALRM";
    case SIGTERM: return "SIGTERM";
    case SIGCHLD: return "SIGCHLD";
    default:
        snprintf(buf, sizeof buf, "signal %d", sig);
        return buf;
    }
}

/* "exited N" or "signaled SIGNAME". */
static __attribute__((unused)) const char *describe(int status) {
    static char buf[64];
    if (WIFEXITED(status))
        snprintf(buf, sizeof buf, "exited %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, sizeof buf, "signaled %s", signame(WTERMSIG(status)));
    else
        snprintf(buf, sizeof buf, "status 0x%x", status);
    return buf;
}

/* "RESULT ERRNO-NAME" for a call, errno cleared before it: use as
 * OUTCOME(wait(NULL)), never printf("%d %s", f(), ename(errno)), whose
 * arguments C evaluates in no set order. */
static __attribute__((unused)) const char *outcome(long r) {
    static char bufs[4][64];
    static int next;
    char *buf = bufs[next++ % 4];
    snprintf(buf, sizeof bufs[0], "%ld %s", r, ename(errno));
    return buf;
}
#define OUTCOME(expr) outcome((errno = 0, (long)(expr)))

static __attribute__((unused)) const char *yes(int cond) {
    return cond ? "yes" : "no";
}

/* Line-buffered stdout: a fork never duplicates a half-written line, and
 * output is the same whether stdout is a pipe or not. */
static __attribute__((unused)) void setup(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
}

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            printf("FAIL line %d: %s (errno %s)\n", __LINE__, #cond,        \
                   ename(errno));                                            \
            fflush(stdout);                                                  \
            _exit(99);                                                       \
        }                                                                    \
    } while (0)

static __attribute__((unused)) void msleep(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* dir + "/" + name, in a static buffer per call site's copy. */
static __attribute__((unused)) char *join(char *buf, size_t size, const char *dir, const char *name) {
    snprintf(buf, size, "%s/%s", dir, name);
    return buf;
}

/* Waits for `pid` and returns its description. */
static __attribute__((unused)) const char *reap(pid_t pid) {
    int status = 0;
    pid_t got;
    do {
        got = waitpid(pid, &status, 0);
    } while (got < 0 && errno == EINTR);
    CHECK(got == pid);
    return describe(status);
}

/* Writes all of `buf`. */
static __attribute__((unused)) void write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        CHECK(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

#endif
