/* Opens a FIFO and copies it to stdout (`fifo read PATH`), or writes a line
 * into it (`fifo write PATH`), with blocking opens as a shell would. */
#include "common.h"
#include <fcntl.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: fifo read|write PATH\n");
        return 2;
    }
    int writing = strcmp(argv[1], "write") == 0;
    printf("opening\n");
    fflush(stdout);
    int fd = open(argv[2], writing ? O_WRONLY : O_RDONLY);
    if (fd < 0) {
        printf("open: %s\n", ename(errno));
        return 1;
    }
    if (writing) {
        const char line[] = "through the fifo\n";
        printf("write: %s\n", write(fd, line, sizeof line - 1) == sizeof line - 1 ? "OK" : ename(errno));
        return 0;
    }
    char buf[256];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        fwrite(buf, 1, (size_t)n, stdout);
    printf("read: %s\n", n == 0 ? "EOF" : ename(errno));
    return 0;
}
