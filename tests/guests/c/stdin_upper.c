/* Reads stdin to end of file with stdio and prints it upper-cased, then the
 * byte count; a read error prints its name and exits 1. */
#include "common.h"
#include <ctype.h>
#include <stdlib.h>

int main(void) {
    char buf[256];
    size_t total = 0, n;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) {
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)toupper((unsigned char)buf[i]);
        fwrite(buf, 1, n, stdout);
        total += n;
    }
    if (ferror(stdin)) {
        printf("read error: %s\n", ename(errno));
        return 1;
    }
    printf("[%zu bytes]\n", total);
    return 0;
}
