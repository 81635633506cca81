/* Prints a greeting and its arguments; `exit N` as the first argument exits
 * with N after printing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    printf("hello from c\n");
    printf("argc=%d\n", argc);
    for (int i = 1; i < argc; i++)
        printf("arg[%d]=%s\n", i, argv[i]);
    fprintf(stderr, "c on stderr\n");
    if (argc > 2 && strcmp(argv[1], "exit") == 0) {
        fflush(stdout);
        exit(atoi(argv[2]));
    }
    if (argc > 2 && strcmp(argv[1], "return") == 0)
        return atoi(argv[2]);
    return 0;
}
