/* Two mounts of one sealed namespace: `A B` opens A/f, unlinks it as B/f,
 * and reads and writes it through the open descriptor: the data must live
 * until the descriptor is closed, whichever mount unlinked it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: sealed_two_mounts A B\n");
        return 2;
    }
    char a[256], b[256];
    snprintf(a, sizeof a, "%s/f", argv[1]);
    snprintf(b, sizeof b, "%s/f", argv[2]);
    int fd = open(a, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, "kept data", 9) != 9) {
        perror("open/write");
        return 1;
    }
    printf("same file through B: %s\n", access(b, F_OK) == 0 ? "yes" : strerror(errno));
    printf("unlink through B: %s\n", unlink(b) == 0 ? "ok" : strerror(errno));
    printf("gone through A: %s\n", access(a, F_OK) != 0 ? "yes" : "no");
    char buf[16] = {0};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    printf("read through the fd: %s\n", n >= 0 ? buf : strerror(errno));
    printf("write through the fd: %s\n", pwrite(fd, "more", 4, 9) == 4 ? "ok" : strerror(errno));
    struct stat st;
    printf("fstat: %s\n", fstat(fd, &st) == 0 && st.st_size == 13 ? "13 bytes" : strerror(errno));
    close(fd);
    return 0;
}
