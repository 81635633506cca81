/* A child blocked opening a FIFO that nobody opens from the other side (for
 * reading, then for writing) is still ended by a signal and reaped. BIN
 * holds the FIFO (`fifo`, made by the test). */
#include "common.h"

static void blocked_open(const char *path, int flags, const char *what) {
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int fd = open(path, flags);
        printf("%s open returned: %s\n", what, fd >= 0 ? "a descriptor" : ename(errno));
        _exit(3);
    }
    usleep(200 * 1000);
    CHECK(kill(pid, SIGKILL) == 0);
    printf("%s opener: %s\n", what, reap(pid));
}

int main(int argc, char **argv) {
    setup();
    CHECK(argc == 3);
    char path[512];
    join(path, sizeof path, argv[1], "fifo");
    blocked_open(path, O_RDONLY, "reading");
    blocked_open(path, O_WRONLY, "writing");
    return 0;
}
