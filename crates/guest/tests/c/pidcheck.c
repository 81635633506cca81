/* Helper: argv[1] and argv[2] are the pid and parent pid the caller had
 * before it exec'd this; prints whether they are unchanged. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3)
        return 2;
    printf("pidcheck: same pid: %s\n", atoi(argv[1]) == getpid() ? "yes" : "no");
    printf("pidcheck: same parent: %s\n", atoi(argv[2]) == getppid() ? "yes" : "no");
    return 0;
}
