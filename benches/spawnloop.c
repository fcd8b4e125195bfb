/* The ceiling of issue 10's case 1: N runs of a command, J at a time, with nothing but
 * posix_spawn and waitpid (no parsing, no logs, no bookkeeping). benches/compare.sh
 * builds it with the system's C compiler and times it next to prun and make.
 *
 *   spawnloop N J PROGRAM [ARGS...]      # e.g. spawnloop 2000 2 /usr/bin/true
 *
 * Exits 1 when a run fails or cannot be started, 2 on bad usage. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

extern char **environ;

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: spawnloop N J PROGRAM [ARGS...]\n");
        return 2;
    }
    long n = atol(argv[1]), j = atol(argv[2]), started = 0, running = 0;
    int failed = 0;
    while (started < n || running > 0) {
        while (running < j && started < n) {
            pid_t pid;
            int err = posix_spawn(&pid, argv[3], NULL, NULL, argv + 3, environ);
            if (err != 0) {
                fprintf(stderr, "spawnloop: cannot start %s (error %d)\n", argv[3], err);
                return 1;
            }
            started++;
            running++;
        }
        int status;
        if (waitpid(-1, &status, 0) < 0) {
            perror("spawnloop: waitpid");
            return 1;
        }
        running--;
        failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    }
    return failed;
}
