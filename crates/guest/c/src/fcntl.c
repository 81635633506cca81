/*
 * warden guest library: fcntl, replacing wasi-libc's (whose F_GETFD and
 * F_SETFD pretend). F_GETFD/F_SETFD read and write the per-descriptor
 * close-on-exec flag kept by the host; F_DUPFD/F_DUPFD_CLOEXEC duplicate
 * onto the lowest free descriptor at or above the argument; F_GETFL and
 * F_SETFL are wasi-libc's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <wasi/api.h>

#include "internal.h"

/* The descriptor limit wasi-libc's and warden's tables share. */
#define FD_SEARCH_LIMIT 65536

static int int_arg(va_list ap) {
    return va_arg(ap, int);
}

int fcntl(int fd, int cmd, ...) {
    switch (cmd) {
    case F_GETFD: {
        int32_t flags = 0;
        int32_t error = __warden_fd_fdflags_get(fd, &flags);
        if (error != 0) {
            errno = error;
            return -1;
        }
        return (flags & __WARDEN_FDFLAG_CLOEXEC) ? FD_CLOEXEC : 0;
    }
    case F_SETFD: {
        va_list ap;
        va_start(ap, cmd);
        int arg = int_arg(ap);
        va_end(ap);
        int32_t error = __warden_fd_fdflags_set(
            fd, (arg & FD_CLOEXEC) ? __WARDEN_FDFLAG_CLOEXEC : 0);
        if (error != 0) {
            errno = error;
            return -1;
        }
        return 0;
    }
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
        va_list ap;
        va_start(ap, cmd);
        int min = int_arg(ap);
        va_end(ap);
        if (min < 0) {
            errno = EINVAL;
            return -1;
        }
        int32_t flags;
        int32_t error = __warden_fd_fdflags_get(fd, &flags);
        if (error != 0) {
            errno = error;
            return -1;
        }
        for (int to = min; to < FD_SEARCH_LIMIT; to++) {
            if (__warden_fd_fdflags_get(to, &flags) != __WASI_ERRNO_BADF)
                continue;
            error = __warden_fd_dup2(fd, to);
            if (error == 0 && cmd == F_DUPFD_CLOEXEC)
                error = __warden_fd_fdflags_set(to, __WARDEN_FDFLAG_CLOEXEC);
            if (error != 0) {
                errno = error;
                return -1;
            }
            return to;
        }
        errno = EMFILE;
        return -1;
    }
    case F_GETFL: {
        __wasi_fdstat_t fds;
        __wasi_errno_t error = __wasi_fd_fdstat_get(fd, &fds);
        if (error != 0) {
            errno = error;
            return -1;
        }
        int oflags = fds.fs_flags;
        if ((fds.fs_rights_base &
             (__WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_READDIR)) != 0) {
            if ((fds.fs_rights_base & __WASI_RIGHTS_FD_WRITE) != 0)
                oflags |= O_RDWR;
            else
                oflags |= O_RDONLY;
        } else if ((fds.fs_rights_base & __WASI_RIGHTS_FD_WRITE) != 0) {
            oflags |= O_WRONLY;
        } else {
            oflags |= O_SEARCH;
        }
        return oflags;
    }
    case F_SETFL: {
        va_list ap;
        va_start(ap, cmd);
        int flags = int_arg(ap);
        va_end(ap);
        __wasi_errno_t error = __wasi_fd_fdstat_set_flags(fd, flags & 0xfff);
        if (error != 0) {
            errno = error;
            return -1;
        }
        return 0;
    }
    default:
        errno = EINVAL;
        return -1;
    }
}
