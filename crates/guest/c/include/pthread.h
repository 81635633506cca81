/*
 * warden guest library: <pthread.h>, plus what wasi-libc leaves out for
 * threaded programs (`warden cc -pthread`).
 */
#ifndef __WARDEN_PTHREAD_H
#define __WARDEN_PTHREAD_H

#include_next <pthread.h>

#ifdef _REENTRANT
#ifdef __cplusplus
extern "C" {
#endif

/* Ends the calling thread with `value` for pthread_join; the process ends
 * (status 0) when its last thread does. Implemented by the guest library:
 * wasi-libc declares it only for its unmodified-upstream build. */
_Noreturn void pthread_exit(void *value);

#ifdef __cplusplus
}
#endif
#endif

#endif
