/*
 * warden guest library: the entry point of a threaded command (`warden cc
 * -pthread`), linked in place of wasi-libc's crt1-command.o.
 *
 * It does what wasi-libc's does, after one more step first: giving the
 * main thread its thread-local storage. Newer wasm-ld (15 and later) points
 * `__tls_base` at the static copy of `.tdata` in `__wasm_init_memory`;
 * Debian 12's wasm-ld 14 leaves it at 0, so without this step the main
 * thread's `_Thread_local` variables (wasi-libc's own `pthread_self`
 * among them) would live at address 0, over the bottom of the stack, with
 * their initial values never copied in. Other threads are unaffected:
 * wasi-libc's pthread_create calls `__wasm_init_tls` on the block it
 * allocates for them.
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <wasi/api.h>

/* Synthesized by wasm-ld for a shared memory: copies `.tdata` to the block
 * and sets `__tls_base` to it. */
extern void __wasm_init_tls(void *block);
extern void __wasi_init_tp(void);
extern void __wasm_call_ctors(void);
extern int __main_void(void);
extern void __wasm_call_dtors(void);

/* Room for the main thread's block in .bss, enough for most programs; a
 * larger one gets fresh pages (nothing has allocated yet, and malloc
 * itself needs the block, through its lock). */
#define MAIN_TLS_ROOM 4096
static _Alignas(16) unsigned char main_tls[MAIN_TLS_ROOM];

static void init_main_tls(void) {
    size_t size = __builtin_wasm_tls_size();
    size_t align = __builtin_wasm_tls_align();
    if (align == 0)
        align = 1;
    uintptr_t block = (uintptr_t)main_tls;
    if (size + align > MAIN_TLS_ROOM) {
        size_t pages = (size + align + 65535) / 65536;
        size_t old = __builtin_wasm_memory_grow(0, pages);
        if (old == SIZE_MAX)
            __builtin_trap();
        block = old * 65536;
    }
    block = (block + align - 1) & ~(uintptr_t)(align - 1);
    __wasm_init_tls((void *)block);
}

__attribute__((export_name("_start"))) void _start(void) {
    /* A command runs once per instance (each thread is an instance of its
     * own, started at wasi_thread_start instead). */
    static volatile _Atomic int started = 0;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&started, &expected, 1))
        __builtin_trap();

    init_main_tls();
    __wasi_init_tp();
    __wasm_call_ctors();
    int r = __main_void();
    __wasm_call_dtors();
    if (r != 0)
        __wasi_proc_exit(r);
}
