/* fork + _exit + waitpid latency with a given amount of touched heap.
 * Usage: fork_wait HEAP_MIB ITERATIONS. Prints the mean in microseconds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? (size_t)atoi(argv[1]) : 1;
    int iters = argc > 2 ? atoi(argv[2]) : 100;
    char *heap = malloc(mib << 20);
    if (!heap) return 1;
    memset(heap, 0xa5, mib << 20); /* touch every page */
    double start = now_us();
    for (int i = 0; i < iters; i++) {
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); return 1; }
        if (pid == 0) _exit(heap[i % (mib << 20)] == (char)0xa5 ? 0 : 1);
        int status;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "child failed\n");
            return 1;
        }
    }
    printf("%.1f\n", (now_us() - start) / iters);
    return 0;
}
