/* Helper, exec'd by the tests: prints its arguments (not argv[0]: its
 * path differs) and WARDEN_T from the environment; exits with argc. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    printf("echo_args: argc=%d\n", argc);
    for (int i = 1; i < argc; i++)
        printf("echo_args: argv[%d]=%s\n", i, argv[i]);
    const char *t = getenv("WARDEN_T");
    printf("echo_args: WARDEN_T=%s\n", t ? t : "(unset)");
    return argc;
}
