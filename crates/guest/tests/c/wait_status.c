/* wait and waitpid: exit statuses, signal statuses, waiting for a given
 * pid or any child, zombies reaped exactly once, ECHILD. */
#include "common.h"

static pid_t child(int how) {
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid != 0)
        return pid;
    switch (how) {
    case 0:
        exit(0);
    case 1:
        exit(3);
    case 2:
        _exit(255);
    case 3:
        exit(256 + 7); /* only the low 8 bits survive */
    case 4:
        raise(SIGTERM);
        break;
    case 5:
        kill(getpid(), SIGKILL);
        break;
    case 6:
        return 0; /* returns from main below */
    }
    _exit(100);
}

int main(void) {
    setup();
    const char *what[] = {"exit(0)",      "exit(3)",          "_exit(255)",
                          "exit(263)",    "raise(SIGTERM)",   "kill(self, SIGKILL)",
                          "return 42 from main"};
    for (int how = 0; how < 7; how++) {
        pid_t pid = child(how);
        if (pid == 0)
            return 42;
        int status = 0;
        pid_t got = waitpid(pid, &status, 0);
        printf("%s: waitpid returned the pid: %s, %s", what[how], yes(got == pid),
               describe(status));
        printf(" (WIFEXITED=%d WIFSIGNALED=%d)\n", !!WIFEXITED(status),
               !!WIFSIGNALED(status));
        printf("  again: %s\n", OUTCOME(waitpid(pid, &status, 0)));
    }

    /* Any child: three children, reaped by wait() and waitpid(-1). */
    pid_t a = child(1), b = child(0), c = child(2);
    int codes = 0;
    for (int i = 0; i < 3; i++) {
        int status;
        pid_t got = i == 0 ? wait(&status) : waitpid(-1, &status, 0);
        CHECK(got == a || got == b || got == c);
        CHECK(WIFEXITED(status));
        codes += WEXITSTATUS(status);
    }
    printf("any child: sum of codes %d\n", codes);

    /* A NULL status pointer is fine. */
    pid_t d = child(1);
    printf("NULL status: returned the pid: %s\n", yes(waitpid(d, NULL, 0) == d));

    printf("no children: wait %s\n", OUTCOME(wait(NULL)));
    printf("not a child: waitpid(getppid()) %s\n", OUTCOME(waitpid(getppid(), NULL, 0)));
    return 0;
}
