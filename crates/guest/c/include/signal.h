/*
 * warden guest library: <signal.h>. wasi-libc's header with its
 * _WASI_EMULATED_SIGNAL numbering (Linux's), plus what it leaves out:
 * kill, sigaction and struct sigaction, signal sets, sigprocmask,
 * sigsuspend. The guest library implements them over warden's process ABI;
 * handlers run in the guest, called by the host through the export
 * __warden_signal.
 *
 * Masking (sigprocmask, sa_mask) is done in the guest: a blocked signal
 * whose handler is installed waits until it is unblocked. A signal with its
 * default action takes effect even when blocked.
 */
#ifndef _WASI_EMULATED_SIGNAL
#define _WASI_EMULATED_SIGNAL 1
#endif

#include_next <signal.h>

#ifndef __WARDEN_SIGNAL_H
#define __WARDEN_SIGNAL_H

#ifdef __cplusplus
extern "C" {
#endif

#define __NEED_pid_t
#define __NEED_uid_t
#include <bits/alltypes.h>

/* sigset_t comes from warden/prelude.h (injected by `warden cc`); without
 * it wasi-libc's one-byte placeholder would be used. */
typedef char __warden_sigset_t_is_musls[sizeof(sigset_t) == 128 ? 1 : -1];

#define SIG_BLOCK 0
#define SIG_UNBLOCK 1
#define SIG_SETMASK 2

#define SA_NOCLDSTOP 1
#define SA_NOCLDWAIT 2
#define SA_SIGINFO 4
#define SA_ONSTACK 0x08000000
#define SA_RESTART 0x10000000
#define SA_NODEFER 0x40000000
#define SA_RESETHAND 0x80000000

#define SI_USER 0
#define SI_KERNEL 128

#define CLD_EXITED 1
#define CLD_KILLED 2
#define CLD_DUMPED 3

union sigval {
    int sival_int;
    void *sival_ptr;
};

typedef struct {
    int si_signo;
    int si_errno;
    int si_code;
    pid_t si_pid;
    uid_t si_uid;
    int si_status;
    void *si_addr;
    union sigval si_value;
} siginfo_t;

struct sigaction {
    union {
        void (*sa_handler)(int);
        void (*sa_sigaction)(int, siginfo_t *, void *);
    } __sa_handler;
    sigset_t sa_mask;
    int sa_flags;
    void (*sa_restorer)(void);
};
#define sa_handler __sa_handler.sa_handler
#define sa_sigaction __sa_handler.sa_sigaction

int kill(pid_t, int);

int sigemptyset(sigset_t *);
int sigfillset(sigset_t *);
int sigaddset(sigset_t *, int);
int sigdelset(sigset_t *, int);
int sigismember(const sigset_t *, int);

int sigaction(int, const struct sigaction *__restrict,
              struct sigaction *__restrict);
int sigprocmask(int, const sigset_t *__restrict, sigset_t *__restrict);
int sigsuspend(const sigset_t *);
int sigpending(sigset_t *);
int siginterrupt(int, int);

#ifdef __cplusplus
}
#endif

#endif
