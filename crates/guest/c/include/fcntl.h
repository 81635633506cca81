/*
 * warden guest library: <fcntl.h>. wasi-libc's header; the guest library's
 * fcntl() adds F_GETFD/F_SETFD with a real FD_CLOEXEC (honoured by exec)
 * and F_DUPFD/F_DUPFD_CLOEXEC. O_CLOEXEC stays 0 as in wasi-libc: set the
 * flag with fcntl(fd, F_SETFD, FD_CLOEXEC).
 */
#include_next <fcntl.h>

#ifndef __WARDEN_FCNTL_H
#define __WARDEN_FCNTL_H

#ifndef F_DUPFD
#define F_DUPFD 0
#endif
#ifndef F_DUPFD_CLOEXEC
#define F_DUPFD_CLOEXEC 1030
#endif

#endif
