/* Repeated forks from a parent that keeps writing: every child sees the
 * parent's memory exactly as it was at its fork, even when it looks only
 * after several later forks and writes (and a heap growth) of the parent;
 * no child's writes show in the parent or in another child. (warden builds
 * a fork's memory from layers of the parent's earlier forks; this checks
 * them end to end.) */
#include "common.h"

#define HEAP (4 << 20)
#define EXTRA (3 << 20)
#define ROUNDS 40
#define LATER 4 /* a child checks its memory this many forks later */

static unsigned char *heap, *extra;

static unsigned long long checksum(void) {
    unsigned long long h = 1469598103934665603ULL;
    for (size_t i = 0; i < HEAP; i += 8)
        h = (h ^ *(unsigned long long *)(heap + i)) * 1099511628211ULL;
    if (extra)
        for (size_t i = 0; i < EXTRA; i += 8)
            h = (h ^ *(unsigned long long *)(extra + i)) * 1099511628211ULL;
    return h;
}

static unsigned next(unsigned *state) {
    *state = *state * 1103515245u + 12345u;
    return *state >> 4;
}

static void initial(unsigned char *mem) {
    for (size_t i = 0; i < HEAP; i++)
        mem[i] = (unsigned char)(i * 7 + i / 4096);
}

/* A round's scattered writes, some zeroing data, some across pages. */
static void scribble(unsigned char *mem, unsigned *rng, int round) {
    for (unsigned n = next(rng) % 5 + 1; n > 0; n--) {
        size_t at = next(rng) % HEAP, len = next(rng) % 9000;
        if (at + len > HEAP)
            len = HEAP - at;
        memset(mem + at, next(rng) % 3 == 0 ? 0 : round + 1, len);
    }
}

struct kid {
    pid_t pid;
    int go, result;
    int round;
};

/* Lets a waiting child check its memory, and reports what it found. */
static void finish(struct kid *k) {
    CHECK(write(k->go, "g", 1) == 1);
    char verdict = 0;
    CHECK(read(k->result, &verdict, 1) == 1);
    close(k->go);
    close(k->result);
    printf("round %d: child saw its fork's memory: %s, %s\n", k->round,
           yes(verdict == 'y'), reap(k->pid));
    k->pid = 0;
}

int main(void) {
    setup();
    heap = malloc(HEAP);
    CHECK(heap != NULL);
    initial(heap);
    struct kid kids[LATER] = {0};
    unsigned rng = 1;
    for (int round = 0; round < ROUNDS; round++) {
        scribble(heap, &rng, round);
        if (round == ROUNDS / 2) { /* grows linear memory */
            extra = malloc(EXTRA);
            CHECK(extra != NULL);
            memset(extra, 0x5a, EXTRA);
        }
        struct kid *k = &kids[round % LATER];
        if (k->pid)
            finish(k);
        unsigned long long at_fork = checksum();
        int go[2], result[2];
        CHECK(pipe(go) == 0 && pipe(result) == 0);
        fflush(stdout);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            close(go[1]);
            close(result[0]);
            for (int i = 0; i < LATER; i++)
                if (kids[i].pid) {
                    close(kids[i].go);
                    close(kids[i].result);
                }
            char c;
            CHECK(read(go[0], &c, 1) == 1);
            int same = checksum() == at_fork;
            /* Writes of its own, which nobody else may see. */
            memset(heap + (size_t)round * 65536 % HEAP, 0xee, 65536);
            same = same && checksum() != at_fork;
            CHECK(write(result[1], same ? "y" : "n", 1) == 1);
            _exit(0);
        }
        close(go[0]);
        close(result[1]);
        *k = (struct kid){pid, go[1], result[0], round};
    }
    for (int i = 0; i < LATER; i++)
        if (kids[i].pid)
            finish(&kids[i]);
    unsigned long long mine = checksum();
    /* The children's writes must not have reached the parent: redo its
     * own writes on a fresh copy and compare. */
    unsigned char *again = malloc(HEAP);
    CHECK(again != NULL);
    initial(again);
    rng = 1;
    for (int round = 0; round < ROUNDS; round++)
        scribble(again, &rng, round);
    unsigned char *saved = heap;
    heap = again;
    printf("parent's memory is its own: %s\n", yes(checksum() == mine));
    heap = saved;
    return 0;
}
