/*
 * warden guest library: fork.
 *
 * proc_fork unwinds the guest's stack with binaryen's asyncify into the
 * buffer below, the host copies memory and globals into the child, and both
 * rewind. The buffer is what asyncify expects: two 32-bit pointers, the
 * current position and the end, then the space the stack is saved in.
 */
#include <errno.h>
#include <stdint.h>
#include <unistd.h>
#ifdef _REENTRANT
#include <pthread.h>
#endif

#include "internal.h"

#define WARDEN_FORK_BUFFER_SIZE 65536

static struct {
    unsigned char *pos;
    unsigned char *end;
    unsigned char data[WARDEN_FORK_BUFFER_SIZE - 8];
} __attribute__((aligned(16))) fork_buffer;

/* The address of the asyncify buffer, for the host. No side effect: the
 * host may call it between unwind and rewind. */
__attribute__((export_name("__warden_fork_buffer"))) void *
__warden_fork_buffer(void) {
    return &fork_buffer;
}

#ifdef _REENTRANT
/* One buffer for the process: threads fork one at a time. The child's copy
 * of the lock is held too (by the same thread, now its only one) and is
 * released there as in the parent. */
static pthread_mutex_t fork_lock = PTHREAD_MUTEX_INITIALIZER;
#endif

pid_t fork(void) {
    /* Skipped when asyncify rewinds into this frame: only the fork call
     * runs again. */
#ifdef _REENTRANT
    pthread_mutex_lock(&fork_lock);
#endif
    fork_buffer.pos = fork_buffer.data;
    fork_buffer.end = fork_buffer.data + sizeof fork_buffer.data;
    int32_t pid = -1;
    int32_t error = __warden_proc_fork(1, &pid);
#ifdef _REENTRANT
    pthread_mutex_unlock(&fork_lock);
#endif
    if (error != 0) {
        errno = error;
        return -1;
    }
    return pid;
}

/* vfork as fork, which POSIX allows: the child gets a copy of memory. */
pid_t vfork(void) {
    return fork();
}
