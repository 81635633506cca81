/* warden guest library: dup, dup2 over fd_dup, fd_dup2. The new
 * descriptor shares the open-file description (and so the offset) and has
 * FD_CLOEXEC clear. */
#include <errno.h>
#include <unistd.h>

#include "internal.h"

int dup(int fd) {
    int32_t out = -1;
    int32_t error = __warden_fd_dup(fd, &out);
    if (error != 0) {
        errno = error;
        return -1;
    }
    return out;
}

int dup2(int fd, int to) {
    if (fd == to) {
        /* POSIX: return `to` if `fd` is open, EBADF otherwise. */
        int32_t flags;
        int32_t error = __warden_fd_fdflags_get(fd, &flags);
        if (error != 0) {
            errno = error;
            return -1;
        }
        return to;
    }
    if (to < 0) {
        errno = EBADF;
        return -1;
    }
    int32_t error = __warden_fd_dup2(fd, to);
    if (error != 0) {
        errno = error;
        return -1;
    }
    return to;
}
