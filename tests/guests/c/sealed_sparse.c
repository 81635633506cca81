/* Nominal sizes on a sealed mount: grows a file to 2^50 bytes, writes at
 * both ends, shrinks it, grows it again and removes it, open and closed.
 * Each step must cost what is stored, not what the size says. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HUGE (1LL << 50)

static int check(const char *what, int ok) {
    printf("%s: %s\n", what, ok ? "ok" : strerror(errno));
    return ok;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: sealed_sparse DIR\n");
        return 2;
    }
    char path[256], other[256];
    snprintf(path, sizeof path, "%s/huge", argv[1]);
    snprintf(other, sizeof other, "%s/open-huge", argv[1]);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    check("open", fd >= 0);
    check("write head", write(fd, "head", 4) == 4);
    check("grow to 2^50", ftruncate(fd, HUGE) == 0);
    check("write tail", pwrite(fd, "tail", 4, HUGE - 4) == 4);
    char buf[9] = {0};
    check("read tail", pread(fd, buf, 8, HUGE - 8) == 8 && memcmp(buf, "\0\0\0\0tail", 8) == 0);
    check("shrink to 2", ftruncate(fd, 2) == 0);
    check("shrink to 0", ftruncate(fd, 0) == 0);
    check("grow again", ftruncate(fd, HUGE) == 0);
    close(fd);
    check("unlink closed", unlink(path) == 0);
    fd = open(other, O_RDWR | O_CREAT, 0644);
    check("grow open", ftruncate(fd, HUGE) == 0);
    check("unlink open", unlink(other) == 0);
    close(fd);
    return 0;
}
