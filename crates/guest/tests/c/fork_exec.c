/* fork + exec: argv and envp reach the new program, which keeps the pid
 * and the parent; execv, execve, execvp (PATH), execl. */
#include "common.h"

static const char *bin;

static pid_t spawn_with(int how) {
    char path[512];
    join(path, sizeof path, bin, "echo_args");
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid != 0)
        return pid;
    char *argv[] = {"echo_args", "hello world", "", "x", NULL};
    char *envp[] = {"WARDEN_T=from execve", NULL};
    switch (how) {
    case 0:
        execv(path, argv);
        break;
    case 1:
        execve(path, argv, envp);
        break;
    case 2:
        execvp("echo_args", argv);
        break;
    case 3:
        execl(path, "echo_args", "one", (char *)NULL);
        break;
    }
    printf("exec %d failed: %s\n", how, ename(errno));
    _exit(127);
}

int main(int argc, char **argv) {
    setup();
    CHECK(argc == 3);
    bin = argv[1];
    const char *names[] = {"execv", "execve", "execvp", "execl"};
    for (int how = 0; how < 4; how++) {
        printf("-- %s\n", names[how]);
        pid_t pid = spawn_with(how);
        printf("%s: child %s\n", names[how], reap(pid));
    }

    /* The exec'd program keeps the pid and the parent. */
    printf("-- pid\n");
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        char path[512], self[32], parent[32];
        join(path, sizeof path, bin, "pidcheck");
        snprintf(self, sizeof self, "%d", (int)getpid());
        snprintf(parent, sizeof parent, "%d", (int)getppid());
        execl(path, "pidcheck", self, parent, (char *)NULL);
        _exit(127);
    }
    printf("pidcheck: child %s\n", reap(pid));
    return 0;
}
