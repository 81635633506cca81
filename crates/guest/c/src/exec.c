/*
 * warden guest library: the exec family.
 *
 * The path is resolved by wasi-libc against the preopened directories (as
 * open() does) to a directory fd and a path relative to it, which
 * proc_exec resolves in the cage's own filesystem. argv and envp travel as
 * NUL-terminated strings laid end to end. On success nothing returns.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wasi/libc-find-relpath.h>

#include "internal.h"

extern char **environ;

/* Lays the strings of `v` (NULL-terminated, may be NULL) end to end in a
 * malloc'd buffer. Returns 0, or -1 with errno set. */
static int pack(char *const v[], char **out, size_t *len) {
    size_t total = 0;
    if (v != NULL)
        for (size_t i = 0; v[i] != NULL; i++)
            total += strlen(v[i]) + 1;
    char *buf = malloc(total ? total : 1);
    if (buf == NULL) {
        errno = ENOMEM;
        return -1;
    }
    size_t at = 0;
    if (v != NULL)
        for (size_t i = 0; v[i] != NULL; i++) {
            size_t n = strlen(v[i]) + 1;
            memcpy(buf + at, v[i], n);
            at += n;
        }
    *out = buf;
    *len = total;
    return 0;
}

int execve(const char *path, char *const argv[], char *const envp[]) {
    if (path == NULL) {
        errno = EFAULT;
        return -1;
    }
    if (path[0] == '\0') {
        errno = ENOENT;
        return -1;
    }
    char relbuf[PATH_MAX];
    char *rel = relbuf;
    const char *prefix = NULL;
    int dirfd = __wasilibc_find_relpath(path, &prefix, &rel, sizeof relbuf);
    if (dirfd < 0)
        return -1; /* errno: ENOENT (no preopen holds it), ENOMEM, ERANGE */

    char *args = NULL, *env = NULL;
    size_t args_len = 0, env_len = 0;
    if (pack(argv, &args, &args_len) != 0)
        return -1;
    if (pack(envp, &env, &env_len) != 0) {
        free(args);
        return -1;
    }
    int32_t error = __warden_proc_exec(dirfd, rel, strlen(rel), args,
                                       args_len, env, env_len);
    free(args);
    free(env);
    errno = error != 0 ? error : ENOEXEC;
    return -1;
}

int execv(const char *path, char *const argv[]) {
    return execve(path, argv, environ);
}

int execvpe(const char *file, char *const argv[], char *const envp[]) {
    if (file == NULL) {
        errno = EFAULT;
        return -1;
    }
    if (file[0] == '\0') {
        errno = ENOENT;
        return -1;
    }
    if (strchr(file, '/') != NULL)
        return execve(file, argv, envp);

    const char *path = getenv("PATH");
    if (path == NULL)
        path = "/bin:/usr/bin";
    size_t flen = strlen(file);
    if (flen > NAME_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int seen_eacces = 0;
    for (const char *p = path;; p++) {
        const char *end = strchr(p, ':');
        if (end == NULL)
            end = p + strlen(p);
        size_t dlen = (size_t)(end - p);
        char buf[PATH_MAX];
        if (dlen + 1 + flen + 1 <= sizeof buf) {
            /* An empty element is the current directory. */
            if (dlen == 0) {
                memcpy(buf, file, flen + 1);
            } else {
                memcpy(buf, p, dlen);
                buf[dlen] = '/';
                memcpy(buf + dlen + 1, file, flen + 1);
            }
            execve(buf, argv, envp);
            switch (errno) {
            case EACCES:
                seen_eacces = 1;
                break;
            case ENOENT:
            case ENOTDIR:
            case ENAMETOOLONG:
            case ENOTCAPABLE:
                break;
            default:
                return -1;
            }
        }
        if (*end == '\0')
            break;
        p = end;
    }
    errno = seen_eacces ? EACCES : ENOENT;
    return -1;
}

int execvp(const char *file, char *const argv[]) {
    return execvpe(file, argv, environ);
}

/* The variadic forms collect their arguments into an array on the stack. */
#define COLLECT(first, ap, argv, n)                                         \
    size_t n = 1;                                                           \
    va_start(ap, first);                                                    \
    while (va_arg(ap, char *) != NULL)                                      \
        n++;                                                                \
    va_end(ap);                                                             \
    char *argv[n + 1];                                                      \
    argv[0] = (char *)(first);                                              \
    va_start(ap, first);                                                    \
    for (size_t i = 1; i <= n; i++)                                         \
        argv[i] = va_arg(ap, char *);

int execl(const char *path, const char *arg0, ...) {
    va_list ap;
    COLLECT(arg0, ap, argv, n)
    va_end(ap);
    return execv(path, argv);
}

int execlp(const char *file, const char *arg0, ...) {
    va_list ap;
    COLLECT(arg0, ap, argv, n)
    va_end(ap);
    return execvp(file, argv);
}

int execle(const char *path, const char *arg0, ...) {
    va_list ap;
    COLLECT(arg0, ap, argv, n)
    char *const *envp = va_arg(ap, char *const *);
    va_end(ap);
    return execve(path, argv, envp);
}
