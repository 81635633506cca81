/* Keeps a journal in a sealed mount across runs: `write TEXT` appends a
 * line, creates a directory and renames files; `show` prints what is
 * there. Exercises create, append, seek, truncate, rename, unlink, mkdir,
 * rmdir, readdir and stat. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int show(const char *root) {
    char path[256];
    snprintf(path, sizeof path, "%s/journal.txt", root);
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("journal: %s\n", strerror(errno));
        return 1;
    }
    char line[256];
    while (fgets(line, sizeof line, f)) printf("journal: %s", line);
    fclose(f);
    struct stat st;
    if (stat(path, &st) == 0) printf("journal size: %lld\n", (long long)st.st_size);
    DIR *d = opendir(root);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] != '.') printf("entry: %s\n", e->d_name);
    }
    if (d) closedir(d);
    return 0;
}

static int write_entry(const char *root, const char *text) {
    char path[256], tmp[256], dir[256], gone[256];
    snprintf(path, sizeof path, "%s/journal.txt", root);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) {
        perror("open journal");
        return 1;
    }
    dprintf(fd, "%s\n", text);
    close(fd);

    /* A scratch file: write, seek back, overwrite, truncate, rename. */
    snprintf(tmp, sizeof tmp, "%s/scratch.tmp", root);
    fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC, 0644);
    write(fd, "0123456789", 10);
    lseek(fd, 2, SEEK_SET);
    write(fd, "AB", 2);
    ftruncate(fd, 6);
    char back[16] = {0};
    pread(fd, back, sizeof back - 1, 0);
    printf("scratch: %s\n", back);
    close(fd);
    snprintf(dir, sizeof dir, "%s/archive", root);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) perror("mkdir");
    snprintf(gone, sizeof gone, "%s/archive/last.tmp", root);
    if (rename(tmp, gone) != 0) perror("rename");
    printf("rmdir non-empty: %s\n", rmdir(dir) == 0 ? "removed" : strerror(errno));
    if (unlink(gone) != 0) perror("unlink");
    snprintf(gone, sizeof gone, "%s/empty", root);
    mkdir(gone, 0755);
    if (rmdir(gone) != 0) perror("rmdir");
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 4 && strcmp(argv[1], "write") == 0) return write_entry(argv[2], argv[3]);
    if (argc >= 3 && strcmp(argv[1], "show") == 0) return show(argv[2]);
    fprintf(stderr, "usage: sealed_journal write DIR TEXT | show DIR\n");
    return 2;
}
