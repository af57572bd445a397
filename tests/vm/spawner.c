/* Spawn costs in a cgroup v2, for the tests in the VM; built statically by the test (cc -static).
 *
 *   spawner kernel N GAP_MS CGROUP_DIR
 *     N spawns of each kind, one every GAP_MS ms (after a quiet spell, as a unit's respawn
 *     is), of a child that exits at once: "none" (a vfork-like clone3, no cgroup), "procs"
 *     (the child writes 0 to CGROUP_DIR/cgroup.procs first: a join), "born" (clone3 with
 *     CLONE_INTO_CGROUP: no join). Prints "KIND median_us p99_us max_us" per kind: the time
 *     from the clone to its return in the parent (the child has exited: CLONE_VFORK).
 *   spawner copy N MIB
 *     with MIB MiB of heap touched (svcd's RSS at 1,000 units is ~11 MiB), N spawns of a
 *     child that exits at once, by a clone that shares the memory ("vm": CLONE_VM |
 *     CLONE_VFORK, as svcd's spawn) and by one that copies the page tables ("fork":
 *     clone3 with CLONE_VFORK only). Prints "COPY_KIND=median_us p99_us max_us".
 *   spawner crash OUT RUN_MS
 *     a unit's run: appends "start NS" to OUT (CLOCK_MONOTONIC), sleeps RUN_MS ms, appends
 *     "exit NS" and exits 1 (as bench/svc.rs's crash role does).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

struct clone_args_v2 {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
        set_tid_size, cgroup;
};

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ULL + t.tv_nsec;
}

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static int cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *name, uint64_t *times, int n) {
    qsort(times, n, sizeof *times, cmp);
    printf("%s=%.1f %.1f %.1f\n", name, times[n / 2] / 1e3,
           times[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] / 1e3, times[n - 1] / 1e3);
    fflush(stdout);
}

/* One spawn of `kind`: its cost in ns, or 0 on failure. */
static uint64_t spawn_once(const char *kind, int procs, int dir) {
    struct clone_args_v2 args;
    memset(&args, 0, sizeof args);
    args.flags = CLONE_VFORK;
    args.exit_signal = SIGCHLD;
    if (!strcmp(kind, "born")) {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = (uint64_t)dir;
    }
    uint64_t t0 = now_ns();
    long pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid == 0) {
        if (!strcmp(kind, "procs") && write(procs, "0", 1) != 1)
            _exit(1);
        _exit(0);
    }
    uint64_t t1 = now_ns();
    if (pid < 0) {
        perror("clone3");
        return 0;
    }
    int status;
    waitpid((pid_t)pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? t1 - t0 : 0;
}

static int kernel(int n, long gap, const char *cgroup) {
    char path[4096];
    snprintf(path, sizeof path, "%s/cgroup.procs", cgroup);
    int procs = open(path, O_WRONLY | O_CLOEXEC);
    int dir = open(cgroup, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (procs < 0 || dir < 0) {
        perror(cgroup);
        return 1;
    }
    const char *kinds[] = {"none", "procs", "born"};
    uint64_t *times = calloc(n, sizeof *times);
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < n; i++) {
            sleep_ms(gap);
            times[i] = spawn_once(kinds[k], procs, dir);
            if (!times[i]) {
                fprintf(stderr, "%s: spawn %d failed\n", kinds[k], i);
                return 1;
            }
        }
        char name[32];
        snprintf(name, sizeof name, "SPAWN_%s", kinds[k]);
        report(name, times, n);
    }
    return 0;
}

static int exit_at_once(void *arg) {
    (void)arg;
    _exit(0);
}

static int copy(int n, long mib) {
    size_t len = (size_t)mib << 20;
    char *heap = malloc(len);
    char *stack = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint64_t *times = calloc(n, sizeof *times);
    if (!heap || stack == MAP_FAILED || !times)
        return 1;
    for (int kind = 0; kind < 2; kind++) {
        for (int i = 0; i < n; i++) {
            /* svcd's pages are written between spawns: each is a fault after a fork's copy. */
            memset(heap, i, len);
            uint64_t t0 = now_ns();
            long pid;
            if (kind == 0) {
                pid = clone(exit_at_once, stack + (1 << 16), CLONE_VM | CLONE_VFORK | SIGCHLD, NULL);
            } else {
                struct clone_args_v2 args;
                memset(&args, 0, sizeof args);
                args.flags = CLONE_VFORK;
                args.exit_signal = SIGCHLD;
                pid = syscall(SYS_clone3, &args, sizeof args);
                if (pid == 0)
                    _exit(0);
            }
            times[i] = now_ns() - t0;
            if (pid < 0) {
                perror("clone");
                return 1;
            }
            waitpid((pid_t)pid, NULL, 0);
        }
        report(kind == 0 ? "COPY_vm" : "COPY_fork", times, n);
    }
    return 0;
}

static void stamp(const char *out, const char *what) {
    FILE *f = fopen(out, "a");
    if (f) {
        fprintf(f, "%s %llu\n", what, (unsigned long long)now_ns());
        fclose(f);
    }
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "kernel"))
        return kernel(atoi(argv[2]), atol(argv[3]), argv[4]);
    if (argc == 4 && !strcmp(argv[1], "copy"))
        return copy(atoi(argv[2]), atol(argv[3]));
    if (argc == 4 && !strcmp(argv[1], "crash")) {
        stamp(argv[2], "start");
        sleep_ms(atol(argv[3]));
        stamp(argv[2], "exit");
        return 1;
    }
    fprintf(stderr, "usage: spawner kernel N GAP_MS CGROUP_DIR | copy N MIB | crash OUT RUN_MS\n");
    return 2;
}
