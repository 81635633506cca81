/* fork, repeatedly: 100 children one after another, 20 alive at once, and
 * forks from children (a chain 5 deep). */
#include "common.h"

static int chain(int depth) {
    if (depth == 0)
        return 0;
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        _exit(chain(depth - 1) + 1);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    return WEXITSTATUS(status);
}

int main(void) {
    setup();
    /* 100 in a row, each reaped before the next. */
    int sum = 0, ok = 1;
    for (int i = 0; i < 100; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            printf("fork %d failed: %s\n", i, ename(errno));
            return 1;
        }
        if (pid == 0)
            _exit(i);
        int status;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
            ok = 0;
        else
            sum += WEXITSTATUS(status);
    }
    printf("100 sequential children: ok=%s sum=%d\n", yes(ok), sum);

    /* 20 alive at once, reaped in any order. */
    pid_t pids[20];
    for (int i = 0; i < 20; i++) {
        pids[i] = fork();
        CHECK(pids[i] >= 0);
        if (pids[i] == 0) {
            msleep(20);
            _exit(100 + i);
        }
    }
    int seen[20] = {0};
    for (int n = 0; n < 20; n++) {
        int status;
        pid_t got = wait(&status);
        CHECK(got > 0);
        for (int i = 0; i < 20; i++)
            if (pids[i] == got) {
                CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 100 + i);
                seen[i]++;
            }
    }
    int all = 1;
    for (int i = 0; i < 20; i++)
        all &= seen[i] == 1;
    printf("20 concurrent children reaped once each: %s\n", yes(all));
    printf("then wait: %s\n", OUTCOME(wait(NULL)));

    /* Forks from children. */
    printf("chain of 5 forks: depth reached %d\n", chain(5));
    return 0;
}
