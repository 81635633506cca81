/*
 * warden guest library: the prelude, injected by `warden cc` with
 * `-include warden/prelude.h` in front of every translation unit.
 *
 * It includes nothing, so that a program's own feature-test macros
 * (_GNU_SOURCE, _POSIX_C_SOURCE, ...) still decide what the system headers
 * declare: it defines macros and one type, sigset_t. The declarations
 * wasi-libc lacks (fork, exec*, waitpid, pipe, dup2, kill, sigaction, ...)
 * come from the guest library's <unistd.h>, <signal.h>, <fcntl.h> and
 * <sys/wait.h>, which sit in front of wasi-libc's on the include path and
 * add to them with #include_next.
 */
#ifndef __WARDEN_PRELUDE_H
#define __WARDEN_PRELUDE_H

/* Built for warden's process ABI (docs/process-abi.md). */
#define __warden__ 1

/* wasi-libc's signal numbers (Linux's) and <signal.h>; the guest library
 * implements signal(), raise() and friends itself. */
#ifndef _WASI_EMULATED_SIGNAL
#define _WASI_EMULATED_SIGNAL 1
#endif
/* getpid() without wasi-libc's deprecation warning: it is real here. */
#ifndef _WASI_EMULATED_GETPID
#define _WASI_EMULATED_GETPID 1
#endif
/* clock() and times(), from wasi-libc's emulation library. */
#ifndef _WASI_EMULATED_PROCESS_CLOCKS
#define _WASI_EMULATED_PROCESS_CLOCKS 1
#endif

/* sigset_t as musl has it (128 bytes). wasi-libc's placeholder is one
 * byte, too small for 64 signals; defined here, ahead of every header, it
 * is the only one a translation unit sees. */
#if !defined(__DEFINED_sigset_t) && !defined(__wasilibc___typedef_sigset_t_h)
typedef struct __sigset_t {
    unsigned long __bits[128 / sizeof(long)];
} sigset_t;
#define __DEFINED_sigset_t
#define __wasilibc___typedef_sigset_t_h
#endif

#endif
