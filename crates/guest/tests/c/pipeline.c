/* A shell-style pipeline `echo_args one two three | upper`, built with
 * pipe, fork, dup2 and exec; and stdout redirected into a pipe in place. */
#include "common.h"

int main(int argc, char **argv) {
    setup();
    CHECK(argc == 3);
    char path[512];
    int p[2];
    CHECK(pipe(p) == 0);
    fflush(stdout);
    pid_t producer = fork();
    CHECK(producer >= 0);
    if (producer == 0) {
        CHECK(dup2(p[1], STDOUT_FILENO) == STDOUT_FILENO);
        close(p[0]);
        close(p[1]);
        execl(join(path, sizeof path, argv[1], "echo_args"), "echo_args", "one", "two",
              "three", (char *)NULL);
        _exit(127);
    }
    pid_t consumer = fork();
    CHECK(consumer >= 0);
    if (consumer == 0) {
        CHECK(dup2(p[0], STDIN_FILENO) == STDIN_FILENO);
        close(p[0]);
        close(p[1]);
        execl(join(path, sizeof path, argv[1], "upper"), "upper", (char *)NULL);
        _exit(127);
    }
    close(p[0]);
    close(p[1]);
    const char *c = reap(consumer);
    printf("consumer: %s\n", c);
    printf("producer: %s\n", reap(producer));

    /* stdout into a pipe and back, in this process. */
    CHECK(pipe(p) == 0);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    CHECK(saved >= 0);
    CHECK(dup2(p[1], STDOUT_FILENO) == STDOUT_FILENO);
    printf("captured line\n");
    fflush(stdout);
    CHECK(dup2(saved, STDOUT_FILENO) == STDOUT_FILENO);
    close(saved);
    close(p[1]);
    char buf[64] = {0};
    ssize_t n = read(p[0], buf, sizeof buf - 1);
    CHECK(n > 0);
    printf("read back from the pipe: %s", buf);
    printf("dup2(fd, fd) returns fd: %s\n", yes(dup2(p[0], p[0]) == p[0]));
    printf("dup2 of a closed fd: %s\n", OUTCOME(dup2(99, 98)));
    close(p[0]);
    return 0;
}
