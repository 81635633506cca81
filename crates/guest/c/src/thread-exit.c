/*
 * warden guest library: pthread_exit, for threaded programs.
 *
 * WebAssembly cannot unwind a stack from inside, so pthread_exit asks the
 * host to end the calling thread's call stack (the `warden.thread_exit`
 * import traps out of it). The host then calls `__warden_thread_exit` on
 * that same thread, which re-enters wasi-libc's `wasi_thread_start` with a
 * start routine that returns the exit value: wasi-libc does the exit work
 * it does after any start routine returns (thread-specific destructors,
 * the value for pthread_join, waking the joiner, leaving the thread list;
 * the last thread out calls exit(0), which flushes stdio).
 */
#ifdef _REENTRANT
#include <pthread.h>
#include <stdint.h>

#include "internal.h"

/* wasi-libc's `struct start_args` (pthread_create.c; the thread starts with
 * this stack pointer and TLS base, then calls `start_func(start_arg)`), as
 * in the sysroot `warden cc` pins (cc/threads.rs). */
struct start_args {
    void *stack;
    void *tls_base;
    void *(*start_func)(void *);
    void *start_arg;
};

/* The thread id wasi-libc's `__wasi_init_tp` gives the main thread. */
#define MAIN_THREAD_ID 0x3FFFFFFF

extern void wasi_thread_start(int tid, struct start_args *args);

static _Thread_local void *exit_value;

static void *return_exit_value(void *unused) {
    (void)unused;
    return exit_value;
}

/* The main thread has no start_args of its own: this one continues on its
 * stack where pthread_exit left it. */
static struct start_args main_args;

/* Called by the host after the thread's stack was ended. `tid` and `args`
 * are what the thread was started with; 0 and NULL for the main thread. */
__attribute__((export_name("__warden_thread_exit"))) void
__warden_thread_exit(int tid, struct start_args *args) {
    if (!args) {
        void *sp;
        __asm__(".globaltype __stack_pointer, i32\n"
                "global.get __stack_pointer\n"
                "local.set %0\n"
                : "=r"(sp));
        main_args.stack = sp;
        main_args.tls_base = __builtin_wasm_tls_base();
        args = &main_args;
        tid = MAIN_THREAD_ID;
    }
    args->start_func = return_exit_value;
    args->start_arg = 0;
    wasi_thread_start(tid, args);
}

_Noreturn void pthread_exit(void *value) {
    exit_value = value;
    __warden_thread_exit_now();
}
#endif
