/* Filesystem scenario through wasi-libc / POSIX. `fsops rw DIR` works in an
 * empty writable directory and prints one line per step; the output is the
 * same natively (gcc, on a temporary directory) and under warden (DIR a
 * preopen), which is what the test checks, together with the files left
 * behind. `fsops ro DIR` tries every kind of write on a read-only directory
 * that holds `existing.txt` and `sub/`. */
#define _GNU_SOURCE
#include "common.h"
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dir[1024];

static const char *P(const char *name) {
    static char bufs[4][1200];
    static int i;
    i = (i + 1) % 4;
    snprintf(bufs[i], sizeof bufs[i], "%s/%s", dir, name);
    return bufs[i];
}

static void print_file(const char *label, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("%s: %s\n", label, ename(errno));
        return;
    }
    unsigned char buf[256];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    printf("%s: ok %zu bytes:", label, n);
    for (size_t i = 0; i < n; i++) {
        if (buf[i] >= 32 && buf[i] < 127 && buf[i] != '\\')
            printf("%c", buf[i]);
        else
            printf("\\x%02x", buf[i]);
    }
    printf("\n");
}

static int cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list(const char *label, const char *path) {
    DIR *d = opendir(path);
    if (!d) {
        printf("%s: %s\n", label, ename(errno));
        return;
    }
    char *names[64];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 64) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        const char *t = e->d_type == DT_DIR ? "dir" : e->d_type == DT_REG ? "file" : e->d_type == DT_LNK ? "link" : "other";
        char *s = malloc(strlen(e->d_name) + 8);
        sprintf(s, "%s:%s", e->d_name, t);
        names[n++] = s;
    }
    closedir(d);
    qsort(names, n, sizeof names[0], cmp);
    printf("%s: ok", label);
    for (int i = 0; i < n; i++) {
        printf(" %s", names[i]);
        free(names[i]);
    }
    printf("\n");
}

static void rw(void) {
    struct stat st;
    char buf[64];
    ssize_t n;

    snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "/work");
    CHECK("mkdir work", mkdir(dir, 0755));
    CHECK("mkdir work again", mkdir(dir, 0755));

    /* stdio */
    FILE *f = fopen(P("a.txt"), "w");
    printf("fopen w: %s\n", f ? "ok" : ename(errno));
    if (f) {
        fputs("hello world\n", f);
        fprintf(f, "%d %s\n", 42, "answer");
        CHECK("fclose", fclose(f));
    }
    print_file("read a.txt", P("a.txt"));
    f = fopen(P("a.txt"), "r");
    if (f) {
        CHECK("fseek 6", fseek(f, 6, SEEK_SET));
        memset(buf, 0, sizeof buf);
        size_t got = fread(buf, 1, 5, f);
        printf("fread 5: %zu %s ftell=%ld\n", got, buf, ftell(f));
        fseek(f, 0, SEEK_END);
        printf("ftell at end: %ld\n", ftell(f));
        fseek(f, -7, SEEK_END);
        printf("fgets from end-7: %s", fgets(buf, sizeof buf, f));
        fclose(f);
    }
    f = fopen(P("a.txt"), "a");
    printf("fopen a: %s\n", f ? "ok" : ename(errno));
    if (f) {
        fputs("more\n", f);
        fclose(f);
    }
    CHECK("stat a.txt", stat(P("a.txt"), &st));
    printf("size=%lld reg=%d\n", (long long)st.st_size, S_ISREG(st.st_mode));
    f = fopen(P("missing.txt"), "r");
    printf("fopen missing: %s\n", f ? "ok" : ename(errno));

    /* descriptors */
    int fd = open(P("a.txt"), O_RDWR);
    CHECK("open O_RDWR", fd);
    CHECK("pwrite AB at 2", pwrite(fd, "AB", 2, 2));
    memset(buf, 0, sizeof buf);
    n = pread(fd, buf, 4, 1);
    printf("pread 4 at 1: %zd %s\n", n, buf);
    printf("offset after p*: %lld\n", (long long)lseek(fd, 0, SEEK_CUR));
    CHECK("lseek 3", lseek(fd, 3, SEEK_SET));
    CHECK("write xyz", write(fd, "xyz", 3));
    printf("offset after write: %lld\n", (long long)lseek(fd, 0, SEEK_CUR));
    CHECK("lseek negative", lseek(fd, -100, SEEK_SET));
    CHECK("ftruncate 5", ftruncate(fd, 5));
    fstat(fd, &st);
    printf("fstat size=%lld\n", (long long)st.st_size);
    CHECK("ftruncate 8", ftruncate(fd, 8));
    fstat(fd, &st);
    printf("fstat size=%lld\n", (long long)st.st_size);
    CHECK("close", close(fd));
    CHECK("close again", close(fd));
    print_file("read a.txt", P("a.txt"));
    CHECK("open O_CREAT|O_EXCL existing", open(P("a.txt"), O_WRONLY | O_CREAT | O_EXCL, 0644));
    CHECK("open missing", open(P("missing.txt"), O_RDONLY));
    CHECK("open through a file", open(P("a.txt/x"), O_RDONLY));
    CHECK("open file O_DIRECTORY", open(P("a.txt"), O_RDONLY | O_DIRECTORY));
    fd = open(P("a.txt"), O_RDONLY);
    CHECK("write on O_RDONLY", write(fd, "x", 1));
    close(fd);
    fd = open(P("t.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK("open O_CREAT|O_TRUNC", fd);
    CHECK("write t", write(fd, "0123456789", 10));
    close(fd);
    fd = open(P("t.txt"), O_WRONLY | O_TRUNC);
    close(fd);
    stat(P("t.txt"), &st);
    printf("t.txt size after O_TRUNC: %lld\n", (long long)st.st_size);
    fd = open(P("t.txt"), O_WRONLY | O_APPEND);
    write(fd, "ab", 2);
    lseek(fd, 0, SEEK_SET);
    write(fd, "cd", 2);
    close(fd);
    print_file("O_APPEND ignores seek", P("t.txt"));

    /* names */
    CHECK("rename a->b", rename(P("a.txt"), P("b.txt")));
    CHECK("access a", access(P("a.txt"), F_OK));
    CHECK("access b", access(P("b.txt"), F_OK));
    CHECK("rename missing", rename(P("nope"), P("x")));
    CHECK("rename t tt", rename(P("t.txt"), P("tt.txt")));
    CHECK("link b c", link(P("b.txt"), P("c.txt")));
    stat(P("b.txt"), &st);
    printf("nlink=%d\n", (int)st.st_nlink);
    CHECK("link onto existing", link(P("b.txt"), P("c.txt")));
    CHECK("symlink", symlink("b.txt", P("sl")));
    memset(buf, 0, sizeof buf);
    n = readlink(P("sl"), buf, sizeof buf - 1);
    printf("readlink: %zd %s\n", n, n >= 0 ? buf : ename(errno));
    CHECK("readlink on file", readlink(P("b.txt"), buf, sizeof buf));
    lstat(P("sl"), &st);
    printf("lstat sl: link=%d\n", S_ISLNK(st.st_mode));
    stat(P("sl"), &st);
    printf("stat sl: reg=%d size=%lld\n", S_ISREG(st.st_mode), (long long)st.st_size);
    print_file("read via symlink", P("sl"));
    CHECK("symlink onto existing", symlink("x", P("sl")));
    CHECK("symlink dangling", symlink("nowhere", P("dangling")));
    CHECK("open dangling", open(P("dangling"), O_RDONLY));
    CHECK("open dangling O_CREAT", open(P("dangling"), O_WRONLY | O_CREAT, 0644));

    /* directories */
    CHECK("mkdir d1", mkdir(P("d1"), 0755));
    CHECK("mkdir d1/d2", mkdir(P("d1/d2"), 0755));
    CHECK("mkdir missing parent", mkdir(P("nope/d"), 0755));
    f = fopen(P("d1/d2/f"), "w");
    printf("fopen d1/d2/f: %s\n", f ? "ok" : ename(errno));
    if (f) {
        fputs("deep", f);
        fclose(f);
    }
    CHECK("rmdir non-empty", rmdir(P("d1")));
    CHECK("rmdir a file", rmdir(P("b.txt")));
    CHECK("unlink a dir", unlink(P("d1")));
    CHECK("rename dir into itself", rename(P("d1"), P("d1/d2/d3")));
    CHECK("rename file over dir", rename(P("b.txt"), P("d1")));
    CHECK("rename d1 e1", rename(P("d1"), P("e1")));
    print_file("read e1/d2/f", P("e1/d2/f"));
    list("readdir work", dir);
    list("readdir e1", P("e1"));
    list("readdir a file", P("b.txt"));
    list("readdir missing", P("missing"));

    /* times */
    struct timespec ts[2] = {{1000000000, 0}, {1000000005, 0}};
    CHECK("utimensat", utimensat(AT_FDCWD, P("c.txt"), ts, 0));
    stat(P("c.txt"), &st);
    printf("mtime=%lld atime=%lld\n", (long long)st.st_mtim.tv_sec, (long long)st.st_atim.tv_sec);
    fd = open(P("c.txt"), O_WRONLY);
    struct timespec ts2[2] = {{0, UTIME_OMIT}, {1234567890, 500}};
    CHECK("futimens", futimens(fd, ts2));
    fstat(fd, &st);
    printf("mtime=%lld.%09ld atime=%lld\n", (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
           (long long)st.st_atim.tv_sec);
    close(fd);

    /* removal */
    CHECK("unlink c", unlink(P("c.txt")));
    CHECK("unlink c again", unlink(P("c.txt")));
    stat(P("b.txt"), &st);
    printf("nlink=%d\n", (int)st.st_nlink);
    CHECK("unlink sl", unlink(P("sl")));
    CHECK("unlink dangling", unlink(P("dangling")));
    CHECK("unlink e1/d2/f", unlink(P("e1/d2/f")));
    CHECK("rmdir e1/d2", rmdir(P("e1/d2")));
    CHECK("rmdir e1", rmdir(P("e1")));
    CHECK("mkdir out", mkdir(P("out"), 0755));
    f = fopen(P("out/result.txt"), "w");
    printf("fopen out/result.txt: %s\n", f ? "ok" : ename(errno));
    if (f) {
        fputs("written by c guest\n", f);
        fclose(f);
    }
    list("final", dir);
    printf("done\n");
}

static void ro(void) {
    struct stat st;
    print_file("read existing", P("existing.txt"));
    list("readdir", dir);
    CHECK("stat", stat(P("existing.txt"), &st));
    CHECK("open O_RDONLY", open(P("existing.txt"), O_RDONLY));
    CHECK("open O_WRONLY", open(P("existing.txt"), O_WRONLY));
    CHECK("open O_RDWR", open(P("existing.txt"), O_RDWR));
    CHECK("open O_CREAT", open(P("new.txt"), O_WRONLY | O_CREAT, 0644));
    CHECK("open O_TRUNC", open(P("existing.txt"), O_WRONLY | O_TRUNC));
    FILE *f = fopen(P("new.txt"), "w");
    printf("fopen w: %s\n", f ? "ok" : ename(errno));
    CHECK("mkdir", mkdir(P("newdir"), 0755));
    CHECK("rmdir", rmdir(P("sub")));
    CHECK("unlink", unlink(P("existing.txt")));
    CHECK("rename", rename(P("existing.txt"), P("renamed.txt")));
    CHECK("link", link(P("existing.txt"), P("linked.txt")));
    CHECK("symlink", symlink("existing.txt", P("sym")));
    struct timespec ts[2] = {{1000000000, 0}, {1000000000, 0}};
    CHECK("utimensat", utimensat(AT_FDCWD, P("existing.txt"), ts, 0));
    int fd = open(P("existing.txt"), O_RDONLY);
    CHECK("ftruncate read-only fd", ftruncate(fd, 0));
    CHECK("write read-only fd", write(fd, "x", 1));
    close(fd);
    print_file("read existing again", P("existing.txt"));
    printf("done\n");
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: fsops rw|ro DIR\n");
        return 98;
    }
    snprintf(dir, sizeof dir, "%s", argv[2]);
    if (!strcmp(argv[1], "rw"))
        rw();
    else if (!strcmp(argv[1], "ro"))
        ro();
    else
        return 98;
    return 0;
}
