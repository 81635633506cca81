/* Threads benchmark (issue 14): one measurement per run, printed as one
 * number (nanoseconds per operation, or milliseconds for the parallel
 * loop). Built natively with gcc -pthread and as a cage with
 * `warden cc -pthread`; bench/threads.sh runs both. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void *nothing(void *arg) { return arg; }

/* pthread_create + pthread_join of a thread that returns at once. */
static double create_join(long n) {
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, nothing, NULL)) { perror("pthread_create"); exit(1); }
        pthread_join(t, NULL);
    }
    return (now_ns() - t0) / n;
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static volatile long counter;

static double uncontended(long n) {
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
    }
    return (now_ns() - t0) / n;
}

static long per_thread;
static void *hammer(void *arg) {
    (void)arg;
    for (long i = 0; i < per_thread; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

/* Two threads taking turns on one mutex: ns per lock/unlock pair. */
static double contended(long n) {
    pthread_t a, b;
    per_thread = n / 2;
    double t0 = now_ns();
    pthread_create(&a, NULL, hammer, NULL);
    pthread_create(&b, NULL, hammer, NULL);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    return (now_ns() - t0) / n;
}

/* Ping-pong through a condition variable: ns per round trip. */
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static long turn, rounds;
static void *ponger(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lock);
    for (long i = 0; i < rounds; i++) {
        while (turn != 1) pthread_cond_wait(&cv, &lock);
        turn = 0;
        pthread_cond_broadcast(&cv);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

static double condvar(long n) {
    pthread_t p;
    rounds = n;
    pthread_create(&p, NULL, ponger, NULL);
    double t0 = now_ns();
    pthread_mutex_lock(&lock);
    for (long i = 0; i < n; i++) {
        turn = 1;
        pthread_cond_broadcast(&cv);
        while (turn != 0) pthread_cond_wait(&cv, &lock);
    }
    pthread_mutex_unlock(&lock);
    double per = (now_ns() - t0) / n;
    pthread_join(p, NULL);
    return per;
}

/* An embarrassingly parallel loop split over k threads: total ms. */
static long work_items;
static double results[2];
static void *crunch(void *arg) {
    long id = (long)arg, k = (long)results[1];
    double s = 0;
    for (long i = id; i < work_items; i += k) s += (double)(i % 7) * 1.000001;
    results[0] += 0 * s; /* keep s alive without sharing a cache line per step */
    return (void *)(long)(s > 0);
}

static double parallel(long n, long k) {
    pthread_t t[2];
    work_items = n;
    results[1] = (double)k;
    double t0 = now_ns();
    for (long i = 0; i < k; i++) pthread_create(&t[i], NULL, crunch, (void *)i);
    for (long i = 0; i < k; i++) pthread_join(t[i], NULL);
    return (now_ns() - t0) / 1e6;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: threads WHAT N\n"); return 2; }
    long n = atol(argv[2]);
    double r;
    if (!strcmp(argv[1], "create")) r = create_join(n);
    else if (!strcmp(argv[1], "uncontended")) r = uncontended(n);
    else if (!strcmp(argv[1], "contended")) r = contended(n);
    else if (!strcmp(argv[1], "condvar")) r = condvar(n);
    else if (!strcmp(argv[1], "parallel1")) r = parallel(n, 1);
    else if (!strcmp(argv[1], "parallel2")) r = parallel(n, 2);
    else { fprintf(stderr, "unknown %s\n", argv[1]); return 2; }
    printf("%.1f\n", r);
    return 0;
}
