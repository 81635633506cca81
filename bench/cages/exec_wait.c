/* fork + execv + waitpid latency. Usage: exec_wait PROGRAM ITERATIONS.
 * PROGRAM is run with the argument "exit"; prints the mean in microseconds. */
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
    if (argc > 1 && strcmp(argv[1], "exit") == 0) return 0;
    if (argc < 3) { fprintf(stderr, "usage: exec_wait PROGRAM N\n"); return 2; }
    int iters = atoi(argv[2]);
    double start = now_us();
    for (int i = 0; i < iters; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            char *args[] = {argv[1], "exit", NULL};
            execv(argv[1], args);
            _exit(127);
        }
        int status;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) { fprintf(stderr, "exec failed\n"); return 1; }
    }
    printf("%.1f\n", (now_us() - start) / iters);
    return 0;
}
