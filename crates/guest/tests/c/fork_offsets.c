/* fork and dup share open-file descriptions: offsets move for both. */
#include "common.h"

int main(int argc, char **argv) {
    setup();
    CHECK(argc == 3);
    char path[512];
    join(path, sizeof path, argv[2], "offsets.txt");
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    write_all(fd, "0123456789", 10);
    CHECK(lseek(fd, 0, SEEK_SET) == 0);

    /* The child reads 4 bytes; the parent then reads on from there. */
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        char buf[5] = {0};
        CHECK(read(fd, buf, 4) == 4);
        printf("child read: %s\n", buf);
        _exit(0);
    }
    printf("child %s\n", reap(pid));
    char buf[4] = {0};
    CHECK(read(fd, buf, 3) == 3);
    printf("parent read after child: %s\n", buf);
    printf("offset now: %ld\n", (long)lseek(fd, 0, SEEK_CUR));

    /* Writes by parent and child land one after the other. */
    CHECK(ftruncate(fd, 0) == 0);
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    write_all(fd, "A", 1);
    fflush(stdout);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        write_all(fd, "B", 1);
        _exit(0);
    }
    printf("writer child %s\n", reap(pid));
    write_all(fd, "C", 1);
    char all[8] = {0};
    CHECK(pread(fd, all, sizeof all - 1, 0) == 3);
    printf("file after parent, child, parent writes: %s\n", all);

    /* dup shares the offset too. */
    int copy = dup(fd);
    CHECK(copy >= 0 && copy != fd);
    CHECK(lseek(fd, 1, SEEK_SET) == 1);
    printf("dup sees the offset: %ld\n", (long)lseek(copy, 0, SEEK_CUR));
    char c = 0;
    CHECK(read(copy, &c, 1) == 1);
    printf("read through dup: %c, original's offset: %ld\n", c, (long)lseek(fd, 0, SEEK_CUR));
    close(copy);
    close(fd);
    return 0;
}
