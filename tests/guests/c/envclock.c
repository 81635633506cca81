/* Environment, clocks, sleeping, poll and entropy from C.
 *   env NAME...   each NAME=value or `NAME unset`
 *   environ       every entry of environ, sorted
 *   clocks        realtime/monotonic plausibility, clock_getres, time()
 *   sleep MS      nanosleep, then whether at least MS passed
 *   poll MS       poll() with no descriptors and a timeout
 *   entropy       getentropy twice
 * Errors print their name; the output is the same natively. */
#include "common.h"
#include <poll.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static long long now_ns(clockid_t c) {
    struct timespec t;
    if (clock_gettime(c, &t) != 0)
        return -1;
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv) {
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "env")) {
        for (int i = 2; i < argc; i++) {
            const char *v = getenv(argv[i]);
            if (v)
                printf("%s=%s\n", argv[i], v);
            else
                printf("%s unset\n", argv[i]);
        }
    } else if (!strcmp(cmd, "environ")) {
        int n = 0;
        while (environ && environ[n])
            n++;
        char **copy = malloc(sizeof(char *) * (n + 1));
        for (int i = 0; i < n; i++)
            copy[i] = environ[i];
        qsort(copy, n, sizeof copy[0], cmp);
        for (int i = 0; i < n; i++)
            printf("%s\n", copy[i]);
        printf("count=%d\n", n);
    } else if (!strcmp(cmd, "clocks")) {
        struct timespec t;
        errno = 0;
        int rc = clock_gettime(CLOCK_REALTIME, &t);
        if (rc == 0)
            printf("realtime: ok plausible=%d\n", t.tv_sec > 1577836800);
        else
            printf("realtime: %s\n", ename(errno));
        long long a = now_ns(CLOCK_MONOTONIC);
        int ea = errno;
        long long b = now_ns(CLOCK_MONOTONIC);
        if (a >= 0)
            printf("monotonic: ok nondecreasing=%d\n", b >= a);
        else
            printf("monotonic: %s\n", ename(ea));
        errno = 0;
        rc = clock_getres(CLOCK_MONOTONIC, &t);
        if (rc == 0)
            printf("getres: ok positive=%d\n", t.tv_sec > 0 || t.tv_nsec > 0);
        else
            printf("getres: %s\n", ename(errno));
        errno = 0;
        time_t tt = time(NULL);
        if (tt != (time_t)-1)
            printf("time: ok plausible=%d\n", tt > 1577836800);
        else
            printf("time: %s\n", ename(errno));
    } else if (!strcmp(cmd, "sleep") && argc > 2) {
        long ms = atol(argv[2]);
        long long t0 = now_ns(CLOCK_MONOTONIC);
        struct timespec req = {ms / 1000, (ms % 1000) * 1000000L};
        errno = 0;
        int rc = nanosleep(&req, NULL);
        long long t1 = now_ns(CLOCK_MONOTONIC);
        if (rc == 0)
            printf("nanosleep: ok elapsed_ge=%d\n", t1 - t0 >= ms * 1000000LL);
        else
            printf("nanosleep: %s\n", ename(errno));
    } else if (!strcmp(cmd, "poll") && argc > 2) {
        int ms = atoi(argv[2]);
        long long t0 = now_ns(CLOCK_MONOTONIC);
        errno = 0;
        int rc = poll(NULL, 0, ms);
        long long t1 = now_ns(CLOCK_MONOTONIC);
        if (rc >= 0)
            printf("poll: ok rc=%d elapsed_ge=%d\n", rc, t1 - t0 >= ms * 1000000LL);
        else
            printf("poll: %s\n", ename(errno));
    } else if (!strcmp(cmd, "entropy")) {
        unsigned char a[32], b[32];
        errno = 0;
        if (getentropy(a, sizeof a) == 0 && getentropy(b, sizeof b) == 0)
            printf("getentropy: ok distinct=%d\n", memcmp(a, b, sizeof a) != 0);
        else
            printf("getentropy: %s\n", ename(errno));
    } else {
        fprintf(stderr, "usage: envclock env|environ|clocks|sleep MS|poll MS|entropy\n");
        return 98;
    }
    return 0;
}
