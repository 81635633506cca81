/* Helper: for each argument NAME=FD, prints whether descriptor FD is open
 * (after an exec, to see FD_CLOEXEC at work). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (eq == NULL)
            return 2;
        *eq = '\0';
        int fd = atoi(eq + 1);
        int flags = fcntl(fd, F_GETFD);
        printf("fdcheck: %s %s\n", argv[i],
               flags >= 0 ? "open" : errno == EBADF ? "closed" : "error");
    }
    return 0;
}
