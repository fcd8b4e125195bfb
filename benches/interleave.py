#!/usr/bin/env python3
"""Times short commands run one after the other in turn, N times each, and prints each
one's median, quartiles and mean wall time (stdout to /dev/null; the order reversed every
other round so that no command always follows the same one).

    benches/interleave.py N 'COMMAND ...' 'COMMAND ...' ...

hyperfine runs all of one command's runs before the next command's: on a shared VM whose
speed drifts over minutes, two builds of a few milliseconds each then differ by as much
as the drift (0.2 ms came and went within an hour on two builds of case 4 that are level
when interleaved; see docs/decisions.md, "Start-up", round 19). Each command is started
with posix_spawn and waited for: no shell, and the same few tens of microseconds added
to every one. Words are split on whitespace.
"""

import os
import statistics
import sys
import time


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit("usage: interleave.py N 'COMMAND ...' ...")
    runs = int(sys.argv[1])
    if runs < 2:
        sys.exit("interleave.py: N must be at least 2 (for the quartiles)")
    commands = [c.split() for c in sys.argv[2:]]
    times: list[list[float]] = [[] for _ in commands]
    devnull = os.open(os.devnull, os.O_WRONLY)
    for i in range(runs):
        order = range(len(commands)) if i % 2 == 0 else reversed(range(len(commands)))
        for k in order:
            words = commands[k]
            start = time.perf_counter()
            pid = os.posix_spawnp(
                words[0], words, os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1)]
            )
            _, status = os.waitpid(pid, 0)
            times[k].append((time.perf_counter() - start) * 1000)
            if os.waitstatus_to_exitcode(status) != 0:
                sys.exit(f"failed: {' '.join(words)}")
    for text, t in zip(sys.argv[2:], times):
        q = statistics.quantiles(t, n=4)
        print(
            f"median {statistics.median(t):.3f} ms  p25 {q[0]:.3f}  p75 {q[2]:.3f}"
            f"  mean {statistics.mean(t):.3f}  {text}"
        )


if __name__ == "__main__":
    main()
