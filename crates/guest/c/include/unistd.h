/*
 * warden guest library: <unistd.h>. wasi-libc's header, plus the process
 * functions it leaves out (WASI has no fork, exec, pipe or dup); the guest
 * library implements them over warden's process ABI.
 */
#ifndef _WASI_EMULATED_GETPID
#define _WASI_EMULATED_GETPID 1
#endif

#include_next <unistd.h>

#ifndef __WARDEN_UNISTD_H
#define __WARDEN_UNISTD_H

#ifdef __cplusplus
extern "C" {
#endif

int pipe(int[2]);
int pipe2(int[2], int);
int dup(int);
int dup2(int, int);
int pause(void);

pid_t fork(void);
pid_t vfork(void);
int execve(const char *, char *const[], char *const[]);
int execv(const char *, char *const[]);
int execle(const char *, const char *, ...);
int execl(const char *, const char *, ...);
int execvp(const char *, char *const[]);
int execlp(const char *, const char *, ...);
int execvpe(const char *, char *const[], char *const[]);

pid_t getppid(void);

#ifdef __cplusplus
}
#endif

#endif
