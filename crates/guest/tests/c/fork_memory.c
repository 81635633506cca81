/* fork: the child gets a copy of memory (globals, heap, stack) and of the
 * stack pointer, parent and child see their own pids, and neither sees the
 * other's writes. */
#include "common.h"

static int global = 1;
static char text[32] = "parent";

/* Forks at the bottom of a recursion, so that both sides must unwind a
 * deep stack of frames with live locals. */
static long deep(int depth, pid_t *pid) {
    volatile char pad[64];
    for (int i = 0; i < 64; i++)
        pad[i] = (char)(depth + i);
    long below;
    if (depth == 0) {
        fflush(stdout);
        *pid = fork();
        below = *pid == 0 ? 1000 : 2000;
    } else {
        below = deep(depth - 1, pid);
    }
    long sum = 0;
    for (int i = 0; i < 64; i++)
        sum += pad[i];
    return below + sum + depth;
}

int main(void) {
    setup();
    int local = 10;
    int *heap = malloc(sizeof *heap);
    CHECK(heap != NULL);
    *heap = 100;
    pid_t me = getpid();
    printf("getpid > 0: %s\n", yes(me > 0));

    int sync[2], report[2];
    CHECK(pipe(sync) == 0 && pipe(report) == 0);
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(sync[1]);
        close(report[0]);
        pid_t self = getpid();
        printf("child: fork returned 0: yes\n");
        printf("child: getppid is the parent: %s\n", yes(getppid() == me));
        printf("child: own pid differs from parent's: %s\n", yes(self != me));
        printf("child: sees global=%d local=%d heap=%d text=%s\n", global, local,
               *heap, text);
        global = 2;
        local = 20;
        *heap = 200;
        strcpy(text, "child");
        /* Printed before the parent goes on. */
        write_all(report[1], &self, sizeof self);
        /* Wait for the parent's writes, which must not show here. */
        char c;
        CHECK(read(sync[0], &c, 1) == 1);
        printf("child: after parent's writes global=%d local=%d heap=%d text=%s\n",
               global, local, *heap, text);
        _exit(0);
    }
    close(sync[0]);
    close(report[1]);
    pid_t reported = 0;
    CHECK(read(report[0], &reported, sizeof reported) == (ssize_t)sizeof reported);
    printf("parent: fork returned the child's pid: %s\n", yes(pid > 0 && pid == reported));
    global = 3;
    local = 30;
    *heap = 300;
    strcpy(text, "PARENT");
    CHECK(write(sync[1], "x", 1) == 1);
    printf("parent: child %s\n", reap(pid));
    printf("parent: sees global=%d local=%d heap=%d text=%s\n", global, local, *heap,
           text);

    /* Fork deep in a recursion; each side returns through every frame. */
    pid_t deep_pid = -1;
    long r = deep(40, &deep_pid);
    if (deep_pid == 0) {
        printf("deep child: result %ld\n", r);
        exit(0);
    }
    printf("deep parent: child %s\n", reap(deep_pid));
    printf("deep parent: result %ld\n", r);
    return 0;
}
