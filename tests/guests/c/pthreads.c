/* POSIX threads, one scenario per argument. Built with `warden cc -pthread`
 * and with `gcc -pthread`; the tests compare the two runs' output and exit
 * code. Results are exact (no timing in the output). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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

/* pthread_exit from main: the workers go on (printing in turn), the last
 * one out exits the process with 0, running atexit handlers and flushing
 * stdout (not a terminal: buffered). */
static int turn;
static pthread_cond_t turn_cv = PTHREAD_COND_INITIALIZER;

static void *in_turn(void *arg) {
    long me = (long)arg;
    usleep(20000);
    pthread_mutex_lock(&lock);
    while (turn != me) pthread_cond_wait(&turn_cv, &lock);
    printf("worker %ld after main left\n", me);
    turn++;
    pthread_cond_broadcast(&turn_cv);
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void at_exit(void) {
    printf("atexit ran\n");
}

static int exit_main(void) {
    atexit(at_exit);
    for (long i = 0; i < 3; i++) {
        pthread_t t;
        pthread_create(&t, NULL, in_turn, (void *)i);
    }
    printf("main calls pthread_exit\n");
    pthread_exit(NULL);
}

/* pthread_exit deep in a thread: its value reaches pthread_join, its
 * thread-specific data destructor runs, the code after it does not. */
static pthread_key_t key;

static void destructor(void *value) {
    printf("destructor of %s\n", (char *)value);
}

static volatile int exit_depth = 0;

static void deeper(int n) {
    if (n == exit_depth) pthread_exit((void *)42);
    if (n > 0) deeper(n - 1);
    printf("not reached\n");
}

static void *exits_deep(void *arg) {
    (void)arg;
    pthread_setspecific(key, "the thread's data");
    deeper(10);
    return (void *)1;
}

static int exit_value(void) {
    pthread_key_create(&key, destructor);
    pthread_t t;
    pthread_create(&t, NULL, exits_deep, NULL);
    void *r;
    pthread_join(t, &r);
    printf("joined with %ld\n", (long)r);
    return 0;
}

/* fork with other threads running: the child has the memory as it was
 * and only the forking thread. */
static volatile int stop_spinning;
static volatile long spins;
static int before_fork;

static void *spinner(void *arg) {
    (void)arg;
    while (!stop_spinning) spins++;
    return NULL;
}

static int report_child(pid_t pid) {
    int status;
    if (waitpid(pid, &status, 0) != pid) {
        perror("waitpid");
        return 1;
    }
    if (WIFEXITED(status)) printf("child exited with %d\n", WEXITSTATUS(status));
    if (WIFSIGNALED(status)) printf("child killed by signal %d\n", WTERMSIG(status));
    return 0;
}

static int fork_threaded(void) {
    pthread_t t;
    pthread_create(&t, NULL, spinner, NULL);
    before_fork = 1234;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        long seen = spins;
        usleep(20000);
        /* Nobody spins in the child. */
        printf("child sees %d, spinner %s\n", before_fork, spins == seen ? "gone" : "running");
        exit(7);
    }
    report_child(pid);
    stop_spinning = 1;
    pthread_join(t, NULL);
    printf("parent joined its spinner\n");
    return 0;
}

static void *forks(void *arg) {
    (void)arg;
    pid_t pid = fork();
    if (pid == 0) {
        printf("child of a second thread\n");
        exit(5);
    }
    report_child(pid);
    return NULL;
}

static int fork_from_thread(void) {
    fflush(stdout);
    pthread_t t;
    pthread_create(&t, NULL, forks, NULL);
    pthread_join(t, NULL);
    printf("thread that forked joined\n");
    return 0;
}

/* Signals: a handler runs once for a signal sent to the process by one of
 * its threads; a threaded child with threads spinning is killed whole. */
static volatile sig_atomic_t handled;

static void on_usr1(int sig) {
    (void)sig;
    handled++;
}

static void *sends(void *arg) {
    (void)arg;
    kill(getpid(), SIGUSR1);
    return NULL;
}

static int signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    pthread_t t;
    pthread_create(&t, NULL, sends, NULL);
    pthread_join(t, NULL);
    while (!handled) usleep(1000);
    printf("handled %d time(s)\n", (int)handled);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        pthread_t a, b;
        pthread_create(&a, NULL, spinner, NULL);
        pthread_create(&b, NULL, spinner, NULL);
        for (;;) pause();
    }
    usleep(50000);
    kill(pid, SIGTERM);
    return report_child(pid);
}

/* Creating threads until pthread_create fails (the cage's max_threads). */
static pthread_mutex_t hold = PTHREAD_MUTEX_INITIALIZER;

static void *held(void *arg) {
    (void)arg;
    pthread_mutex_lock(&hold);
    pthread_mutex_unlock(&hold);
    return NULL;
}

static int max_threads(void) {
    pthread_t t[100];
    int n = 0, err = 0;
    pthread_mutex_lock(&hold);
    while (n < 100 && (err = pthread_create(&t[n], NULL, held, NULL)) == 0) n++;
    pthread_mutex_unlock(&hold);
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
    printf("created %d, then %s\n", n, err == EAGAIN ? "EAGAIN" : err ? strerror(err) : "no error");
    return 0;
}

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "";
    if (!strcmp(what, "sum")) return parallel_sum();
    if (!strcmp(what, "mutex")) return mutex_counter();
    if (!strcmp(what, "condvar")) return producer_consumer();
    if (!strcmp(what, "tls")) return thread_local();
    if (!strcmp(what, "detach")) return detach();
    if (!strcmp(what, "exit-thread")) return exit_thread();
    if (!strcmp(what, "exit-main")) return exit_main();
    if (!strcmp(what, "exit-value")) return exit_value();
    if (!strcmp(what, "fork")) return fork_threaded();
    if (!strcmp(what, "fork-thread")) return fork_from_thread();
    if (!strcmp(what, "signal")) return signals();
    if (!strcmp(what, "max")) return max_threads();
    fprintf(stderr, "unknown scenario %s\n", what);
    return 2;
}
