/* Several writers, one pipe: each record is one writev of two buffers and
 * at most PIPE_BUF bytes, so it must arrive whole (POSIX), however the
 * writers interleave. Four children write through their stdout, dup2'd
 * onto the pipe as in a shell pipeline; the parent reads and checks. */
#include "common.h"
#include <limits.h>
#include <sys/uio.h>

/* wasi-libc has no PIPE_BUF; warden's pipes keep Linux's 4096. */
#ifndef PIPE_BUF
#define PIPE_BUF 4096
#endif

#define WRITERS 4
#define RECORDS 400

/* Payload lengths cycle up to a whole PIPE_BUF record. */
static size_t payload_len(int k) {
    static const size_t lens[] = {10, 200, 1500, PIPE_BUF - 32};
    return lens[k % 4];
}

static void writer(int id) {
    static char payload[PIPE_BUF];
    for (int k = 0; k < RECORDS; k++) {
        char head[32];
        int h = snprintf(head, sizeof head, "w%d k%04d ", id, k);
        size_t n = payload_len(k);
        memset(payload, 'a' + id, n);
        payload[n] = '\n';
        struct iovec iov[2] = {{head, (size_t)h}, {payload, n + 1}};
        CHECK(writev(STDOUT_FILENO, iov, 2) == (ssize_t)(h + n + 1));
    }
}

int main(int argc, char **argv) {
    setup();
    CHECK(argc == 3);
    (void)argv;
    int p[2];
    CHECK(pipe(p) == 0);
    fflush(stdout);
    pid_t kids[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        kids[i] = fork();
        CHECK(kids[i] >= 0);
        if (kids[i] == 0) {
            CHECK(dup2(p[1], STDOUT_FILENO) == STDOUT_FILENO);
            close(p[0]);
            close(p[1]);
            writer(i);
            _exit(0);
        }
    }
    close(p[1]);

    /* Read everything, then check record by record. */
    size_t cap = WRITERS * RECORDS * PIPE_BUF, len = 0;
    char *all = malloc(cap);
    CHECK(all != NULL);
    for (;;) {
        ssize_t n = read(p[0], all + len, cap - len);
        CHECK(n >= 0);
        if (n == 0) break;
        len += (size_t)n;
    }
    int next[WRITERS] = {0}, torn = 0, records = 0;
    for (size_t at = 0; at < len;) {
        char *end = memchr(all + at, '\n', len - at);
        if (end == NULL) { torn++; break; }
        int id, k, used;
        size_t line = (size_t)(end - (all + at));
        if (sscanf(all + at, "w%d k%d %n", &id, &k, &used) != 2 || id < 0 || id >= WRITERS ||
            k != next[id] || line != (size_t)used + payload_len(k)) {
            torn++;
        } else {
            for (size_t i = (size_t)used; i < line; i++)
                if (all[at + i] != 'a' + id) { torn++; break; }
            next[id]++;
        }
        records++;
        at += line + 1;
    }
    for (int i = 0; i < WRITERS; i++)
        printf("writer %d: %s\n", i, reap(kids[i]));
    printf("records: %d, torn: %d\n", records, torn);
    for (int i = 0; i < WRITERS; i++)
        printf("writer %d records in order: %d\n", i, next[i]);
    return 0;
}
