/*
 * warden guest library: read, write, readv, writev, replacing wasi-libc's
 * (same code) so that a call the host interrupts with EINTR is restarted
 * when the handlers that ran were installed with SA_RESTART, as Linux does
 * (signal() installs them so). Without a handler nothing interrupts them.
 */
#include <errno.h>
#include <sys/uio.h>
#include <unistd.h>
#include <wasi/api.h>

#include "internal.h"

static __wasi_errno_t do_read(int fd, const __wasi_iovec_t *iov, size_t n,
                              size_t *done) {
    for (;;) {
        unsigned norestart = __warden_signal_norestart;
        __wasi_errno_t error = __wasi_fd_read(fd, iov, n, done);
        if (error == __WASI_ERRNO_INTR &&
            norestart == __warden_signal_norestart)
            continue;
        return error;
    }
}

static __wasi_errno_t do_write(int fd, const __wasi_ciovec_t *iov, size_t n,
                               size_t *done) {
    for (;;) {
        unsigned norestart = __warden_signal_norestart;
        __wasi_errno_t error = __wasi_fd_write(fd, iov, n, done);
        if (error == __WASI_ERRNO_INTR &&
            norestart == __warden_signal_norestart)
            continue;
        return error;
    }
}

ssize_t read(int fd, void *buf, size_t nbyte) {
    __wasi_iovec_t iov = {.buf = buf, .buf_len = nbyte};
    size_t done;
    __wasi_errno_t error = do_read(fd, &iov, 1, &done);
    if (error != 0) {
        errno = error == ENOTCAPABLE ? EBADF : error;
        return -1;
    }
    return done;
}

ssize_t write(int fd, const void *buf, size_t nbyte) {
    __wasi_ciovec_t iov = {.buf = buf, .buf_len = nbyte};
    size_t done;
    __wasi_errno_t error = do_write(fd, &iov, 1, &done);
    if (error != 0) {
        errno = error == ENOTCAPABLE ? EBADF : error;
        return -1;
    }
    return done;
}

ssize_t readv(int fd, const struct iovec *iov, int iovcnt) {
    if (iovcnt < 0) {
        errno = EINVAL;
        return -1;
    }
    size_t done;
    __wasi_errno_t error =
        do_read(fd, (const __wasi_iovec_t *)iov, iovcnt, &done);
    if (error != 0) {
        errno = error;
        return -1;
    }
    return done;
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
    if (iovcnt < 0) {
        errno = EINVAL;
        return -1;
    }
    size_t done;
    __wasi_errno_t error =
        do_write(fd, (const __wasi_ciovec_t *)iov, iovcnt, &done);
    if (error != 0) {
        errno = error;
        return -1;
    }
    return done;
}
