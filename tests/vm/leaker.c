/* A unit that leaks, for the tests in the VM; built statically by the test (cc -static).
 *
 *   leaker grow STEP_MIB EVERY_MS LIMIT_MIB HOLD_MIB LOG
 *     adds STEP_MIB (pages touched) every EVERY_MS ms until it holds HOLD_MIB, then waits.
 *     When its RSS (what svcd counts) first passes LIMIT_MIB it notes the time
 *     (CLOCK_MONOTONIC); on SIGTERM it appends to LOG the milliseconds from that crossing to
 *     the signal, and exits.
 *   leaker burst MIB
 *     takes MIB at once (one populated mapping), then waits.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double crossed = -1;
static const char *log_path;

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static long rss_mib(void) {
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
        fclose(f);
    }
    return resident * sysconf(_SC_PAGESIZE) >> 20;
}

static void on_term(int sig) {
    (void)sig;
    if (crossed >= 0) {
        FILE *f = fopen(log_path, "a");
        if (f) {
            fprintf(f, "%.1f\n", now_ms() - crossed);
            fclose(f);
        }
    }
    _exit(0);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "burst") == 0) {
        /* One mmap that the kernel fills before it returns (MAP_POPULATE): every page is
         * charged inside one system call, where memory.high's throttling (applied on the way
         * back to user space) does not slow it. */
        size_t size = (size_t)atol(argv[2]) << 20;
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        if (p == MAP_FAILED) return 1;
        for (;;) pause();
    }
    if (argc != 7 || strcmp(argv[1], "grow") != 0) {
        fprintf(stderr, "usage: leaker grow STEP_MIB EVERY_MS LIMIT_MIB HOLD_MIB LOG | burst MIB\n");
        return 2;
    }
    long step = atol(argv[2]), every = atol(argv[3]), limit = atol(argv[4]), hold = atol(argv[5]);
    log_path = argv[6];
    signal(SIGTERM, on_term);
    long held = 0;
    while (held < hold) {
        char *p = malloc((size_t)step << 20);
        if (!p) break;
        memset(p, 1, (size_t)step << 20);
        __asm__ volatile("" : : "r"(p) : "memory");
        held += step;
        if (crossed < 0 && rss_mib() >= limit) crossed = now_ms();
        usleep(every * 1000);
    }
    for (;;) pause();
}
