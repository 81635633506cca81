/*
 * warden guest library: wait, waitpid over proc_join.
 *
 * There are no process groups: pid 0 (the caller's group) means any child,
 * and a pid below -1 names a group that does not exist (ECHILD). Stopped
 * and continued children do not exist either, so WUNTRACED and WCONTINUED
 * are accepted and have no effect.
 */
#include <errno.h>
#include <sys/wait.h>

#include "internal.h"

pid_t waitpid(pid_t pid, int *status, int options) {
    if ((options & ~(WNOHANG | WUNTRACED | WCONTINUED)) != 0) {
        errno = EINVAL;
        return -1;
    }
    if (pid == 0)
        pid = -1;
    else if (pid < -1) {
        errno = ECHILD;
        return -1;
    }
    int32_t flags = (options & WNOHANG) ? 1 : 0;
    for (;;) {
        unsigned norestart = __warden_signal_norestart;
        int32_t st = 0, got = 0;
        int32_t error = __warden_proc_join(pid, flags, &st, &got);
        if (error == EINTR && norestart == __warden_signal_norestart)
            continue;
        if (error != 0) {
            errno = error;
            return -1;
        }
        if (got != 0 && status != NULL)
            *status = st;
        return got;
    }
}

pid_t wait(int *status) {
    return waitpid(-1, status, 0);
}
