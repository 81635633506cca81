/* Helper: copies stdin to stdout in upper case; exits 0, or 1 on a read
 * error. */
#include <ctype.h>
#include <stdio.h>

int main(void) {
    int c;
    while ((c = getchar()) != EOF)
        putchar(toupper(c));
    return ferror(stdin) ? 1 : 0;
}
