/* exec of a missing file or of something that is not a program fails in
 * the caller, which goes on running; then an exec that works replaces it. */
#include "common.h"

int main(int argc, char **argv) {
    setup();
    CHECK(argc == 3);
    char path[512];
    char *args[] = {"x", NULL};

    errno = 0;
    int r = execv(join(path, sizeof path, argv[1], "no-such-program"), args);
    printf("execv missing: %d %s\n", r, ename(errno));

    errno = 0;
    r = execv(join(path, sizeof path, argv[1], "notaprog"), args);
    printf("execv not a program: %d %s\n", r, ename(errno));

    errno = 0;
    r = execvp("no-such-program", args);
    printf("execvp missing: %d %s\n", r, ename(errno));

    errno = 0;
    r = execv(join(path, sizeof path, "/no-such-dir", "prog"), args);
    printf("execv outside any directory: %d %s\n", r, ename(errno));

    printf("still running: yes\n");
    fflush(stdout);
    execl(join(path, sizeof path, argv[1], "echo_args"), "echo_args", "replaced", (char *)NULL);
    printf("exec failed: %s\n", ename(errno));
    return 1;
}
