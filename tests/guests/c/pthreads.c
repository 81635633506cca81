/* POSIX threads, one scenario per argument. Built with `warden cc -pthread`
 * and with `gcc -pthread`; the tests compare the two runs' output and exit
 * code. Results are exact (no timing in the output). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define THREADS 4

static long long partial[THREADS];

static void *sum_part(void *arg) {
    long id = (long)arg;
    long long s = 0;
    for (long long i = id; i < 2000000; i += THREADS) s += i;
    partial[id] = s;
    return NULL;
}

static int parallel_sum(void) {
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, sum_part, (void *)i);
    long long total = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        total += partial[i];
    }
    printf("sum %lld\n", total);
    return 0;
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;

static void *count(void *arg) {
    (void)arg;
    for (int i = 0; i < 20000; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

static int mutex_counter(void) {
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, count, NULL);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    printf("counter %ld\n", counter);
    return 0;
}

/* A one-slot queue with two condition variables. */
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER, not_full = PTHREAD_COND_INITIALIZER;
static int slot, full, done;

static void *produce(void *arg) {
    (void)arg;
    for (int i = 1; i <= 1000; i++) {
        pthread_mutex_lock(&lock);
        while (full) pthread_cond_wait(&not_full, &lock);
        slot = i;
        full = 1;
        pthread_cond_signal(&not_empty);
        pthread_mutex_unlock(&lock);
    }
    pthread_mutex_lock(&lock);
    while (full) pthread_cond_wait(&not_full, &lock);
    done = 1;
    pthread_cond_signal(&not_empty);
    pthread_mutex_unlock(&lock);
    return NULL;
}

static int producer_consumer(void) {
    pthread_t p;
    pthread_create(&p, NULL, produce, NULL);
    long sum = 0, items = 0;
    pthread_mutex_lock(&lock);
    for (;;) {
        while (!full && !done) pthread_cond_wait(&not_empty, &lock);
        if (full) {
            sum += slot;
            items++;
            full = 0;
            pthread_cond_signal(&not_full);
        } else if (done) {
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    pthread_join(p, NULL);
    printf("consumed %ld items, sum %ld\n", items, sum);
    return 0;
}

static _Thread_local int mine = 7;

static void *tls_thread(void *arg) {
    mine = (int)(long)arg;
    usleep(1000);
    return (void *)(long)(mine * 10);
}

static int thread_local(void) {
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, tls_thread, (void *)(i + 1));
    long total = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        total += (long)r;
    }
    printf("main's %d, threads' %ld\n", mine, total);
    return 0;
}

static void *detached(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lock);
    counter++;
    pthread_mutex_unlock(&lock);
    return NULL;
}

static int detach(void) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (int i = 0; i < THREADS; i++) {
        pthread_t t;
        pthread_create(&t, &attr, detached, NULL);
    }
    for (;;) {
        pthread_mutex_lock(&lock);
        long seen = counter;
        pthread_mutex_unlock(&lock);
        if (seen == THREADS) break;
        usleep(1000);
    }
    printf("%d detached threads ran\n", THREADS);
    return 0;
}

static void *exiter(void *arg) {
    (void)arg;
    printf("exiting from a second thread\n");
    fflush(stdout);
    exit(9);
}

static int exit_thread(void) {
    pthread_t t;
    pthread_create(&t, NULL, exiter, NULL);
    for (;;) sleep(1);
}

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "";
    if (!strcmp(what, "sum")) return parallel_sum();
    if (!strcmp(what, "mutex")) return mutex_counter();
    if (!strcmp(what, "condvar")) return producer_consumer();
    if (!strcmp(what, "tls")) return thread_local();
    if (!strcmp(what, "detach")) return detach();
    if (!strcmp(what, "exit-thread")) return exit_thread();
    fprintf(stderr, "unknown scenario %s\n", what);
    return 2;
}
