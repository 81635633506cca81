/* Ways for a C guest to die: `unreachable`, `div0`, `abort`, `oob`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "";
    printf("about to %s\n", what);
    fflush(stdout);
    if (strcmp(what, "unreachable") == 0)
        __builtin_trap();
    if (strcmp(what, "div0") == 0) {
        volatile int a = 1, b = 0;
        printf("%d\n", a / b);
    }
    if (strcmp(what, "abort") == 0)
        abort();
    if (strcmp(what, "oob") == 0) {
        volatile int *p = (volatile int *)(unsigned long)0xfffffff0u;
        printf("%d\n", *p);
    }
    printf("still here\n");
    return 0;
}
