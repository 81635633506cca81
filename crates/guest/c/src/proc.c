/* warden guest library: getpid, getppid. Not cached: a fork changes them. */
#include <unistd.h>

#include "internal.h"

pid_t getpid(void) {
    int32_t pid = 0;
    if (__warden_proc_id(&pid) != 0)
        return -1;
    return pid;
}

pid_t getppid(void) {
    int32_t ppid = 0;
    if (__warden_proc_parent(&ppid) != 0)
        return -1;
    return ppid;
}
