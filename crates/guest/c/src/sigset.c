/* warden guest library: signal sets (sigset_t is wasi-libc's, 128 bytes;
 * signals 1..64 are used). */
#include <errno.h>
#include <signal.h>
#include <string.h>

#define NSIGNALS 65
#define WORD_BITS (8 * sizeof(unsigned long))

static int valid(int sig) {
    if (sig < 1 || sig >= NSIGNALS) {
        errno = EINVAL;
        return 0;
    }
    return 1;
}

int sigemptyset(sigset_t *set) {
    memset(set, 0, sizeof *set);
    return 0;
}

int sigfillset(sigset_t *set) {
    memset(set, 0, sizeof *set);
    for (int sig = 1; sig < NSIGNALS; sig++)
        set->__bits[(sig - 1) / WORD_BITS] |= 1UL << ((sig - 1) % WORD_BITS);
    return 0;
}

int sigaddset(sigset_t *set, int sig) {
    if (!valid(sig))
        return -1;
    set->__bits[(sig - 1) / WORD_BITS] |= 1UL << ((sig - 1) % WORD_BITS);
    return 0;
}

int sigdelset(sigset_t *set, int sig) {
    if (!valid(sig))
        return -1;
    set->__bits[(sig - 1) / WORD_BITS] &= ~(1UL << ((sig - 1) % WORD_BITS));
    return 0;
}

int sigismember(const sigset_t *set, int sig) {
    if (!valid(sig))
        return -1;
    return (set->__bits[(sig - 1) / WORD_BITS] >> ((sig - 1) % WORD_BITS)) & 1;
}
