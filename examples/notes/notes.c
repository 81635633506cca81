/* An example workload: reads its configuration from a virtual mount, lists
 * it, writes a summary to a host directory it was granted, and shows that
 * what it was not granted is refused. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void attempt(const char *what, const char *path, const char *mode) {
    FILE *f = fopen(path, mode);
    if (f) {
        printf("  %-28s %s: allowed (unexpected!)\n", what, path);
        fclose(f);
    } else {
        printf("  %-28s %s: refused (%s)\n", what, path, strerror(errno));
    }
}

int main(int argc, char **argv) {
    const char *who = getenv("NOTES_USER");
    printf("notes: hello %s, %d argument(s)\n", who ? who : "(nobody)", argc - 1);

    char greeting[256] = {0};
    FILE *g = fopen("/config/greeting.txt", "r");
    if (!g || !fgets(greeting, sizeof greeting, g)) {
        perror("notes: /config/greeting.txt");
        return 1;
    }
    fclose(g);
    printf("notes: greeting from /config: %s", greeting);

    printf("notes: files in /config:\n");
    DIR *d = opendir("/config");
    if (!d) {
        perror("notes: opendir /config");
        return 1;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] != '.') printf("  %s\n", e->d_name);
    }
    closedir(d);

    FILE *out = fopen("/out/summary.txt", "w");
    if (!out) {
        perror("notes: /out/summary.txt");
        return 1;
    }
    fprintf(out, "user=%s\ngreeting=%s", who ? who : "", greeting);
    fclose(out);
    printf("notes: wrote /out/summary.txt\n");

    printf("notes: what the policy does not grant:\n");
    attempt("a host file outside mounts", "/etc/passwd", "r");
    attempt("escaping with ..", "/out/../../etc/passwd", "r");
    attempt("writing a virtual mount", "/config/new.txt", "w");
    return 0;
}
