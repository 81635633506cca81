/* warden guest library: pipe, pipe2 over fd_pipe. */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <wasi/api.h>

#include "internal.h"

int pipe(int fd[2]) {
    int32_t r = -1, w = -1;
    int32_t error = __warden_fd_pipe(&r, &w);
    if (error != 0) {
        errno = error;
        return -1;
    }
    fd[0] = r;
    fd[1] = w;
    return 0;
}

/* O_CLOEXEC is 0 in wasi-libc, so only O_NONBLOCK has an effect; use
 * fcntl(fd, F_SETFD, FD_CLOEXEC) for close-on-exec. */
int pipe2(int fd[2], int flags) {
    if ((flags & ~(O_NONBLOCK | O_CLOEXEC)) != 0) {
        errno = EINVAL;
        return -1;
    }
    int p[2];
    if (pipe(p) != 0)
        return -1;
    if (flags & O_NONBLOCK) {
        for (int i = 0; i < 2; i++) {
            __wasi_errno_t error =
                __wasi_fd_fdstat_set_flags(p[i], __WASI_FDFLAGS_NONBLOCK);
            if (error != 0) {
                close(p[0]);
                close(p[1]);
                errno = error;
                return -1;
            }
        }
    }
    fd[0] = p[0];
    fd[1] = p[1];
    return 0;
}
