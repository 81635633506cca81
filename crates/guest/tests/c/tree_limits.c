/* Limits that hold for the whole tree of processes, not per process
 * (run by tests/cages_limits.rs, under warden only: natively nothing
 * limits the tree this way).
 *
 *   tree_limits BIN SCRATCH burn N CHUNKS   fork N children, each burning
 *       CHUNKS chunks of CPU and printing `chunk` after each; the parent
 *       waits for them all.
 *   tree_limits BIN SCRATCH exec CHUNKS     burn CHUNKS chunks, then exec
 *       this program again to burn CHUNKS more (`again`).
 *   tree_limits BIN SCRATCH grow N MIB      fork N children, each growing
 *       its heap 1 MiB at a time up to MIB MiB, all holding their memory
 *       at once; the parent prints the sum of what they got.
 *   tree_limits BIN SCRATCH bigfork MIB     grow the heap by MIB MiB, then
 *       fork: with a total memory limit below twice that, the fork fails.
 *   tree_limits BIN SCRATCH deny N          try N forks and N kills.
 *   tree_limits BIN SCRATCH clocks N        read the clock in this process
 *       and in N children.
 */
#include "common.h"

#ifndef ENOTCAPABLE
#define ENOTCAPABLE (-76)
#endif

static const char *err_name(int e) {
    if (e == ENOMEM)
        return "ENOMEM";
    if (e == ENOTCAPABLE)
        return "ENOTCAPABLE";
    return ename(e);
}

/* About 100 000 loop iterations the compiler cannot fold away. */
static void burn_chunk(void) {
    volatile unsigned long acc = 0;
    for (unsigned long i = 0; i < 100000; i++)
        acc += i ^ (acc >> 3);
}

static void burn(int chunks) {
    for (int c = 0; c < chunks; c++) {
        burn_chunk();
        printf("chunk\n");
    }
}

/* What grow() allocated: kept where the compiler must assume it is used,
 * or it would leave the allocations out. */
static char *volatile blocks[256];

/* Grows the heap 1 MiB at a time, touching every page; returns the MiB
 * it got. */
static int grow(int mib) {
    int got = 0;
    for (; got < mib && got < 256; got++) {
        char *p = malloc(1 << 20);
        if (p == NULL)
            break;
        memset(p, 1, 1 << 20);
        blocks[got] = p;
    }
    return got;
}

int main(int argc, char **argv) {
    setup();
    CHECK(argc >= 4);
    const char *mode = argv[3];
    if (strcmp(mode, "burn") == 0) {
        CHECK(argc == 6);
        int n = atoi(argv[4]), chunks = atoi(argv[5]);
        for (int i = 0; i < n; i++) {
            fflush(stdout);
            pid_t pid = fork();
            CHECK(pid >= 0);
            if (pid == 0) {
                burn(chunks);
                _exit(0);
            }
        }
        int ok = 0;
        for (int i = 0; i < n; i++) {
            int status = 0;
            CHECK(wait(&status) > 0);
            ok += WIFEXITED(status) && WEXITSTATUS(status) == 0;
        }
        printf("children finished: %d of %d\n", ok, n);
        return 0;
    }
    if (strcmp(mode, "exec") == 0 || strcmp(mode, "again") == 0) {
        CHECK(argc == 5);
        burn(atoi(argv[4]));
        if (strcmp(mode, "again") == 0) {
            printf("exec'd image finished\n");
            return 0;
        }
        char path[512];
        join(path, sizeof path, argv[1], "tree_limits");
        fflush(stdout);
        execl(path, "tree_limits", argv[1], argv[2], "again", argv[4], (char *)NULL);
        printf("exec: %s\n", err_name(errno));
        return 1;
    }
    if (strcmp(mode, "grow") == 0) {
        CHECK(argc == 6);
        int n = atoi(argv[4]), mib = atoi(argv[5]);
        /* Each child reports what it got on `done`, then holds its memory
         * until the parent closes `hold`: all of it is in use at once,
         * however the host schedules the children. */
        int done[2], hold[2];
        CHECK(pipe(done) == 0 && pipe(hold) == 0);
        for (int i = 0; i < n; i++) {
            fflush(stdout);
            pid_t pid = fork();
            CHECK(pid >= 0);
            if (pid == 0) {
                close(done[0]);
                close(hold[1]);
                int got = grow(mib);
                write_all(done[1], &got, sizeof got);
                char c;
                while (read(hold[0], &c, 1) < 0 && errno == EINTR) {
                }
                _exit(0);
            }
        }
        close(done[1]);
        close(hold[0]);
        int total = 0, short_of = 0;
        for (int i = 0; i < n; i++) {
            int got = 0;
            CHECK(read(done[0], &got, sizeof got) == (ssize_t)sizeof got);
            total += got;
            short_of += got < mib;
        }
        close(hold[1]);
        for (int i = 0; i < n; i++)
            CHECK(wait(NULL) > 0);
        printf("children grew: %d MiB in total\n", total);
        printf("children refused memory: %d\n", short_of);
        return 0;
    }
    if (strcmp(mode, "bigfork") == 0) {
        CHECK(argc == 5);
        int mib = atoi(argv[4]);
        printf("grew: %d MiB\n", grow(mib));
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        if (pid < 0) {
            printf("fork: %s\n", err_name(errno));
            return 0;
        }
        printf("fork: ok, child %s\n", reap(pid));
        return 0;
    }
    if (strcmp(mode, "clocks") == 0) {
        CHECK(argc == 5);
        int n = atoi(argv[4]);
        struct timespec ts;
        for (int i = 0; i < n; i++) {
            fflush(stdout);
            pid_t pid = fork();
            CHECK(pid >= 0);
            if (pid == 0) {
                errno = 0;
                int r = clock_gettime(CLOCK_MONOTONIC, &ts);
                printf("child clock: %d %s\n", r, err_name(errno));
                fflush(stdout);
                _exit(0);
            }
            reap(pid);
        }
        errno = 0;
        int r = clock_gettime(CLOCK_MONOTONIC, &ts);
        printf("parent clock: %d %s\n", r, err_name(errno));
        return 0;
    }
    if (strcmp(mode, "deny") == 0) {
        CHECK(argc == 5);
        int n = atoi(argv[4]);
        for (int i = 0; i < n; i++) {
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0)
                _exit(0);
            if (pid > 0) {
                printf("fork: ok, child %s\n", reap(pid));
                continue;
            }
            printf("fork: %s\n", err_name(errno));
        }
        for (int i = 0; i < n; i++) {
            errno = 0;
            int r = kill(getpid(), 0);
            printf("kill: %d %s\n", r, err_name(errno));
        }
        return 0;
    }
    printf("unknown mode %s\n", mode);
    return 2;
}
