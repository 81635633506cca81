/* A real fork bomb, for warden only (it is not run natively): every
 * process forks in a loop, children carry on the loop, and every process
 * waits for its children. Along the chain of first children, DEPTH + 1
 * processes would be alive at once, more than the limit, so some fork
 * fails with EAGAIN. Exits 0 when every process finished and some fork
 * failed with EAGAIN, 1 if none did. */
#include "common.h"

#define DEPTH 8

int main(void) {
    setup();
    int saw_eagain = 0;
    int is_top = 1;
    for (int i = 0; i < DEPTH; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            if (errno == EAGAIN)
                saw_eagain = 1;
            else
                printf("fork failed: %s\n", ename(errno));
        } else if (pid == 0) {
            is_top = 0;
            saw_eagain = 0;
        }
    }
    int status;
    pid_t pid;
    while ((pid = wait(&status)) > 0 || (pid < 0 && errno == EINTR))
        if (pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
            saw_eagain = 1;
    if (is_top)
        printf("bomb contained: some fork failed with EAGAIN: %s\n", yes(saw_eagain));
    return saw_eagain ? 0 : 1;
}
