/*
 * warden guest library: the raw imports of warden's process ABI
 * (docs/process-abi.md). Programs use the POSIX functions built on them
 * (fork, execve, waitpid, pipe, dup2, kill, sigaction, ...); this header is
 * for the library itself and for programs that want the ABI directly.
 *
 * Every function returns a WASI errno (0 = success) and writes its results
 * through pointers.
 */
#ifndef __WARDEN_ABI_H
#define __WARDEN_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define __WARDEN_IMPORT(name) \
    __attribute__((__import_module__("warden"), __import_name__(#name)))

/* End the calling thread's call stack (pthread_exit); never returns. The
 * host then calls the export `__warden_thread_exit` on that thread, which
 * does the C library's exit work. Only in a threaded cage. */
__attribute__((__noreturn__)) void __warden_thread_exit_now(void)
    __WARDEN_IMPORT(thread_exit);

/* Fork the cage; `copy_memory` must be 1. Writes the child's pid in the
 * parent, 0 in the child. Needs the module to be asyncified (`warden cc`
 * does it when the module imports this function). */
int32_t __warden_proc_fork(int32_t copy_memory, int32_t *pid_out)
    __WARDEN_IMPORT(proc_fork);

/* Replace the cage's module by the one at `path`, relative to preopen
 * `dirfd`. `argv`/`envp`: NUL-terminated strings laid end to end. Returns
 * only on failure. */
int32_t __warden_proc_exec(int32_t dirfd, const char *path, size_t path_len,
                           const char *argv, size_t argv_len,
                           const char *envp, size_t envp_len)
    __WARDEN_IMPORT(proc_exec);

/* Wait for child `pid` (-1: any). `flags`: 1 = WNOHANG. Writes a Linux
 * wait status and the reaped pid (0 with WNOHANG when none has ended). */
int32_t __warden_proc_join(int32_t pid, int32_t flags, int32_t *status_out,
                           int32_t *pid_out)
    __WARDEN_IMPORT(proc_join);

int32_t __warden_proc_id(int32_t *pid_out) __WARDEN_IMPORT(proc_id);
int32_t __warden_proc_parent(int32_t *ppid_out) __WARDEN_IMPORT(proc_parent);

/* Send `sig` to `pid`: the caller itself or one of its descendants. */
int32_t __warden_proc_signal(int32_t pid, int32_t sig)
    __WARDEN_IMPORT(proc_signal);

/* Dispositions for __warden_proc_sigaction. */
#define __WARDEN_SIG_DEFAULT 0
#define __WARDEN_SIG_IGNORE 1
#define __WARDEN_SIG_HANDLED 2
int32_t __warden_proc_sigaction(int32_t sig, int32_t disposition)
    __WARDEN_IMPORT(proc_sigaction);

/* Block until a signal is delivered; EINTR after a handler ran. */
int32_t __warden_proc_pause(void) __WARDEN_IMPORT(proc_pause);

int32_t __warden_fd_pipe(int32_t *read_fd_out, int32_t *write_fd_out)
    __WARDEN_IMPORT(fd_pipe);
int32_t __warden_fd_dup(int32_t fd, int32_t *fd_out) __WARDEN_IMPORT(fd_dup);
int32_t __warden_fd_dup2(int32_t fd, int32_t to) __WARDEN_IMPORT(fd_dup2);

/* Per-descriptor flags: bit 0 = close-on-exec. */
#define __WARDEN_FDFLAG_CLOEXEC 1
int32_t __warden_fd_fdflags_get(int32_t fd, int32_t *flags_out)
    __WARDEN_IMPORT(fd_fdflags_get);
int32_t __warden_fd_fdflags_set(int32_t fd, int32_t flags)
    __WARDEN_IMPORT(fd_fdflags_set);

/* Exports of the guest library, called by the host. */
void *__warden_fork_buffer(void);
void __warden_signal(int sig);

#ifdef __cplusplus
}
#endif

#endif
