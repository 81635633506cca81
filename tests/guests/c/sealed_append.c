/* Four cages append to one file of a sealed mount at once, each `write`
 * one whole line through an O_APPEND descriptor: `own DIR` gives every
 * cage its own open, `shared DIR` has them share the parent's (one
 * open-file description). `count DIR` reads the file back and says how
 * many lines are whole and how many each cage wrote. Built with
 * `warden cc` (fork). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CAGES 4
#define LINES 1000

static int append_lines(int fd, int cage) {
    for (int i = 0; i < LINES; i++) {
        char line[64];
        int n = snprintf(line, sizeof line, "cage %d line %04d ............\n", cage, i);
        /* One write per line: O_APPEND must put each at the end whole. */
        if (write(fd, line, (size_t)n) != n) {
            fprintf(stderr, "cage %d: write: %s\n", cage, strerror(errno));
            return 1;
        }
    }
    return 0;
}

static int run(const char *path, int shared) {
    int flags = O_WRONLY | O_CREAT | O_APPEND;
    int fd = -1;
    if (shared && (fd = open(path, flags, 0644)) < 0) {
        perror("open");
        return 1;
    }
    pid_t pids[CAGES];
    for (int c = 0; c < CAGES; c++) {
        pids[c] = fork();
        if (pids[c] < 0) {
            perror("fork");
            return 1;
        }
        if (pids[c] == 0) {
            if (!shared && (fd = open(path, flags, 0644)) < 0) {
                perror("open");
                _exit(1);
            }
            _exit(append_lines(fd, c));
        }
    }
    int failed = 0;
    for (int c = 0; c < CAGES; c++) {
        int status = 0;
        if (waitpid(pids[c], &status, 0) != pids[c] || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0)
            failed++;
    }
    printf("cages failed: %d\n", failed);
    return failed != 0;
}

static int count(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        perror("fopen");
        return 1;
    }
    int whole = 0, broken = 0, per_cage[CAGES] = {0};
    char line[256];
    while (fgets(line, sizeof line, f)) {
        int cage, n, end = 0;
        if (sscanf(line, "cage %d line %d ............\n%n", &cage, &n, &end) == 2 &&
            end == (int)strlen(line) && cage >= 0 && cage < CAGES) {
            whole++;
            per_cage[cage]++;
        } else {
            broken++;
        }
    }
    fclose(f);
    printf("whole lines: %d\nbroken lines: %d\n", whole, broken);
    for (int c = 0; c < CAGES; c++) printf("cage %d: %d\n", c, per_cage[c]);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: sealed_append own|shared|count DIR\n");
        return 2;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/lines.txt", argv[2]);
    if (strcmp(argv[1], "own") == 0) return run(path, 0);
    if (strcmp(argv[1], "shared") == 0) return run(path, 1);
    if (strcmp(argv[1], "count") == 0) return count(path);
    fprintf(stderr, "unknown mode %s\n", argv[1]);
    return 2;
}
