/* Shared by warden's C test guests. Every guest builds both with
 * `clang --target=wasm32-wasi` and natively with `gcc`, so that a test can
 * compare warden's output with a native run of the same program. Errors are
 * printed by symbolic name, because the numbers differ between platforms. */
#ifndef WARDEN_GUEST_COMMON_H
#define WARDEN_GUEST_COMMON_H

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *ename(int e) {
    static char buf[32];
    switch (e) {
    case 0: return "OK";
    case EACCES: return "EACCES";
    case EBADF: return "EBADF";
    case EEXIST: return "EEXIST";
    case EFAULT: return "EFAULT";
    case EINVAL: return "EINVAL";
    case EIO: return "EIO";
    case EISDIR: return "EISDIR";
    case ELOOP: return "ELOOP";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOENT: return "ENOENT";
    case ENOSYS: return "ENOSYS";
    case ENOTDIR: return "ENOTDIR";
    case ENOTEMPTY: return "ENOTEMPTY";
    case EPERM: return "EPERM";
    case EROFS: return "EROFS";
    case ESPIPE: return "ESPIPE";
    case EXDEV: return "EXDEV";
#ifdef ENOTCAPABLE
    case ENOTCAPABLE: return "ENOTCAPABLE";
#endif
    default:
        snprintf(buf, sizeof buf, "E#%d", e);
        return buf;
    }
}

/* `label: ok` when rc >= 0 (or rc is a non-NULL pointer), else `label: ENAME`. */
#define CHECK(label, expr)                                                     \
    do {                                                                       \
        errno = 0;                                                             \
        long rc_ = (long)(expr);                                               \
        if (rc_ >= 0)                                                          \
            printf("%s: ok\n", label);                                         \
        else                                                                   \
            printf("%s: %s\n", label, ename(errno));                           \
    } while (0)

#endif
