/*
 * warden guest library: signal dispositions and handlers.
 *
 * The host keeps each signal's disposition (default, ignore, handled) and
 * applies default actions itself. For a handled signal it calls the export
 * __warden_signal(sig) at a point where the cage is in a system call, and
 * that runs the handler installed here. The signal mask lives in the guest:
 * a blocked signal is recorded as pending and its handler runs when it is
 * unblocked.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define NSIGNALS 65 /* 1..64, as _NSIG */

static struct sigaction actions[NSIGNALS];
static uint64_t blocked;
static volatile uint64_t pending;

static uint64_t bit(int sig) {
    return (uint64_t)1 << (sig - 1);
}

static uint64_t set_bits(const sigset_t *set) {
    uint64_t bits = 0;
    for (int sig = 1; sig < NSIGNALS; sig++)
        if (sigismember(set, sig) == 1)
            bits |= bit(sig);
    return bits;
}

static void bits_set(uint64_t bits, sigset_t *set) {
    sigemptyset(set);
    for (int sig = 1; sig < NSIGNALS; sig++)
        if (bits & bit(sig))
            sigaddset(set, sig);
}

/* SIGKILL and SIGSTOP can be neither caught nor blocked. */
static const uint64_t UNBLOCKABLE = ((uint64_t)1 << (SIGKILL - 1)) |
                                    ((uint64_t)1 << (SIGSTOP - 1));

void __SIG_IGN(int sig) {
    (void)sig;
}

void __SIG_ERR(int sig) {
    (void)sig;
}

static int default_ignores(int sig) {
    return sig == SIGCHLD || sig == SIGURG || sig == SIGWINCH ||
           sig == SIGCONT;
}

static void deliver(int sig) {
    struct sigaction sa = actions[sig];
    if (sa.sa_handler == SIG_IGN)
        return;
    if (sa.sa_handler == SIG_DFL) {
        /* Reset since the host decided to call us: act as the default. */
        if (!default_ignores(sig))
            __warden_proc_signal(getpid(), sig);
        return;
    }
    uint64_t saved = blocked;
    blocked |= set_bits(&sa.sa_mask);
    if (!(sa.sa_flags & SA_NODEFER))
        blocked |= bit(sig);
    blocked &= ~UNBLOCKABLE;
    if (sa.sa_flags & SA_RESETHAND) {
        memset(&actions[sig], 0, sizeof actions[sig]);
        __warden_proc_sigaction(sig, __WARDEN_SIG_DEFAULT);
    }
    if (!(sa.sa_flags & SA_RESTART))
        __warden_signal_norestart++;
    __warden_signal_delivered++;
    if (sa.sa_flags & SA_SIGINFO) {
        siginfo_t info;
        memset(&info, 0, sizeof info);
        info.si_signo = sig;
        info.si_code = SI_USER;
        sa.sa_sigaction(sig, &info, NULL);
    } else {
        sa.sa_handler(sig);
    }
    blocked = saved;
}

/* Runs the handlers of pending signals that are no longer blocked. */
static void run_pending(void) {
    for (;;) {
        uint64_t ready = pending & ~blocked;
        if (ready == 0)
            return;
        int sig = __builtin_ctzll(ready) + 1;
        pending &= ~bit(sig);
        deliver(sig);
    }
}

/* Called by the host to deliver a handled signal. */
__attribute__((export_name("__warden_signal"))) void
__warden_signal(int sig) {
    if (sig < 1 || sig >= NSIGNALS)
        return;
    if (blocked & bit(sig)) {
        pending |= bit(sig);
        return;
    }
    deliver(sig);
    run_pending();
}

int sigaction(int sig, const struct sigaction *restrict act,
              struct sigaction *restrict old) {
    if (sig < 1 || sig >= NSIGNALS) {
        errno = EINVAL;
        return -1;
    }
    if (act != NULL && (sig == SIGKILL || sig == SIGSTOP)) {
        errno = EINVAL;
        return -1;
    }
    struct sigaction previous = actions[sig];
    if (act != NULL) {
        int32_t disposition = act->sa_handler == SIG_DFL   ? __WARDEN_SIG_DEFAULT
                              : act->sa_handler == SIG_IGN ? __WARDEN_SIG_IGNORE
                                                           : __WARDEN_SIG_HANDLED;
        /* In place before the host may deliver. */
        actions[sig] = *act;
        int32_t error = __warden_proc_sigaction(sig, disposition);
        if (error != 0) {
            actions[sig] = previous;
            errno = error;
            return -1;
        }
        if (disposition != __WARDEN_SIG_HANDLED)
            pending &= ~bit(sig);
    }
    if (old != NULL)
        *old = previous;
    return 0;
}

static void (*install(int sig, void (*handler)(int), int flags))(int) {
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = flags;
    if (sigaction(sig, &sa, &old) != 0)
        return SIG_ERR;
    return old.sa_handler;
}

/* BSD semantics, as glibc and musl: the handler stays, calls restart. */
void (*signal(int sig, void (*handler)(int)))(int) {
    return install(sig, handler, SA_RESTART);
}

void (*bsd_signal(int sig, void (*handler)(int)))(int) {
    return install(sig, handler, SA_RESTART);
}

void (*__sysv_signal(int sig, void (*handler)(int)))(int) {
    return install(sig, handler, SA_RESETHAND | SA_NODEFER);
}

int siginterrupt(int sig, int flag) {
    struct sigaction sa;
    if (sigaction(sig, NULL, &sa) != 0)
        return -1;
    if (flag)
        sa.sa_flags &= ~SA_RESTART;
    else
        sa.sa_flags |= SA_RESTART;
    return sigaction(sig, &sa, NULL);
}

int sigprocmask(int how, const sigset_t *restrict set, sigset_t *restrict old) {
    uint64_t previous = blocked;
    if (set != NULL) {
        uint64_t bits = set_bits(set);
        switch (how) {
        case SIG_BLOCK:
            blocked |= bits;
            break;
        case SIG_UNBLOCK:
            blocked &= ~bits;
            break;
        case SIG_SETMASK:
            blocked = bits;
            break;
        default:
            errno = EINVAL;
            return -1;
        }
        blocked &= ~UNBLOCKABLE;
    }
    if (old != NULL)
        bits_set(previous, old);
    run_pending();
    return 0;
}

int sigpending(sigset_t *set) {
    bits_set(pending & blocked, set);
    return 0;
}

/* Waits until a handler has run. The host returns EINTR from proc_pause
 * after calling __warden_signal, which may only have recorded a blocked
 * signal: then wait again. */
static int wait_for_handler(void) {
    unsigned delivered = __warden_signal_delivered;
    while (delivered == __warden_signal_delivered) {
        int32_t error = __warden_proc_pause();
        if (error != 0 && error != EINTR) {
            errno = error;
            return -1;
        }
    }
    errno = EINTR;
    return -1;
}

int pause(void) {
    return wait_for_handler();
}

int sigsuspend(const sigset_t *mask) {
    uint64_t saved = blocked;
    unsigned delivered = __warden_signal_delivered;
    blocked = set_bits(mask) & ~UNBLOCKABLE;
    run_pending();
    int result;
    if (delivered != __warden_signal_delivered) {
        errno = EINTR;
        result = -1;
    } else {
        result = wait_for_handler();
    }
    int saved_errno = errno;
    blocked = saved;
    run_pending();
    errno = saved_errno;
    return result;
}
