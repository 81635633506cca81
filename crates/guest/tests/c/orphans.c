/* Orphans: a grandchild whose parent exits is reparented to the first
 * process, which can wait for it. (Natively the program makes itself a
 * child subreaper, which is what warden's first cage is.) */
#include "common.h"
#if defined(__linux__) && !defined(__wasi__)
#include <sys/prctl.h>
#endif

int main(void) {
    setup();
#if defined(__linux__) && !defined(__wasi__)
    CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
#endif
    pid_t top = getpid();
    int checked[2];
    CHECK(pipe(checked) == 0);
    fflush(stdout);
    pid_t a = fork();
    CHECK(a >= 0);
    if (a == 0) {
        pid_t self = getpid();
        pid_t b = fork();
        CHECK(b >= 0);
        if (b == 0) {
            /* The grandchild: note its parent, let the middle process go,
             * then wait to be orphaned. */
            int was_child = getppid() == self;
            CHECK(write(checked[1], "b", 1) == 1);
            close(checked[1]);
            close(checked[0]);
            int polls = 0;
            while (getppid() == self && polls++ < 2000)
                msleep(5);
            printf("grandchild: parent was the middle process: %s\n", yes(was_child));
            printf("grandchild: reparented to the first process: %s\n",
                   yes(getppid() == top));
            exit(7);
        }
        /* The middle process exits without waiting, once the grandchild
         * has looked at its parent. */
        char c;
        CHECK(read(checked[0], &c, 1) == 1);
        _exit(3);
    }
    close(checked[0]);
    close(checked[1]);
    char middle[64];
    snprintf(middle, sizeof middle, "%s", reap(a));
    /* The orphan prints, then exits; only then does this wait return. */
    int status = 0;
    pid_t got = wait(&status);
    printf("top: middle process %s\n", middle);
    printf("top: reaped the orphan: %s, %s\n", yes(got > 0 && got != a), describe(status));
    printf("top: then wait %s\n", OUTCOME(wait(NULL)));
    return 0;
}
