"""How many CPU cores other processes keep busy, and so how many compute threads a CPU run should
use: shared by the backends' CPU training and their benchmarks' load record (ddgan_core.benchmark).

Why: a backend's compute threads (PyTorch's OpenMP team, tinygrad's kernel threads, one per core by
default) spin while they wait for a core another process holds. On this 2-core machine the toy step
took 16 ms with two threads when idle, 26 ms with one, and 39-68 ms with two while another process
kept one core busy (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import os
import time


class CpuLoadWarning(UserWarning):
    """A CPU run's compute threads outnumber the cores other processes leave idle, and its backend
    does not cut them itself (tinygrad's training and sampling: backends/tinygrad/entry.py says why)."""


def idle_cpu_threads(default: int, cores: int, busy_cores: float) -> int:
    """Threads for CPU work: the backend's default but no more than the cores other processes leave
    idle, and at least one. With PyTorch the count can change the last bits of a convolutional
    network's sums (tiny preset: about 1e-9 after two steps; the toy MLP's 200 iterations were
    bit-identical), so the torch backend keeps a count the user set (entry.set_up); tinygrad's
    kernels give the same bits on any count."""
    return max(1, min(default, cores - round(busy_cores)))


def busy_cores(seconds: float = 0.2) -> float:
    """How many cores other processes kept busy over the next `seconds` (this one sleeps meanwhile),
    from /proc/stat; 0 where that is not available (not Linux)."""

    def idle_and_total() -> tuple[int, int]:
        with open("/proc/stat") as stat:
            ticks = [int(v) for v in stat.readline().split()[1:]]
        return ticks[3] + ticks[4], sum(ticks)  # idle + iowait, all

    try:
        idle_0, total_0 = idle_and_total()
        time.sleep(seconds)
        idle_1, total_1 = idle_and_total()
    except (OSError, ValueError, IndexError):
        return 0.0
    cores = os.cpu_count() or 1
    return cores * (1.0 - (idle_1 - idle_0) / max(total_1 - total_0, 1))
