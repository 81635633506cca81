/* Pipe throughput between two processes, 64 KiB writes.
 * Usage: pipe_throughput MIB. Prints MiB/s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    long mib = argc > 1 ? atol(argv[1]) : 256;
    static char buf[64 * 1024];
    int fds[2];
    if (pipe(fds) != 0) { perror("pipe"); return 1; }
    double start = now_s();
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        memset(buf, 'x', sizeof buf);
        long chunks = mib * 16;
        for (long i = 0; i < chunks; i++) {
            size_t done = 0;
            while (done < sizeof buf) {
                ssize_t n = write(fds[1], buf + done, sizeof buf - done);
                if (n <= 0) _exit(1);
                done += (size_t)n;
            }
        }
        _exit(0);
    }
    close(fds[1]);
    long long total = 0;
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) total += n;
    int status;
    waitpid(pid, &status, 0);
    double secs = now_s() - start;
    if (total != mib * 1024 * 1024) { fprintf(stderr, "short: %lld\n", total); return 1; }
    printf("%.0f\n", mib / secs);
    return 0;
}
