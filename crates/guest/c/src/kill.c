/* warden guest library: kill, raise over proc_signal. A cage may signal
 * itself and its descendants only (EPERM otherwise); process groups
 * (pid <= 0) are not supported. */
#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include "internal.h"

int kill(pid_t pid, int sig) {
    int32_t error = __warden_proc_signal(pid, sig);
    if (error != 0) {
        errno = error;
        return -1;
    }
    return 0;
}

int raise(int sig) {
    return kill(getpid(), sig);
}
