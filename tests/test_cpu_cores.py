"""The CPU cores other processes keep busy, and the threads CPU work leaves them (ddgan_core.cpu_cores)."""

import os
import subprocess
import sys

import pytest

from ddgan_core.cpu_cores import busy_cores, idle_cpu_threads


@pytest.mark.parametrize(("default", "cores", "busy", "expected"), [
    (2, 2, 0.1, 2),  # idle 2-core machine: both cores
    (2, 2, 1.2, 1),  # another process holds a core: one thread, no spinning
    (2, 2, 2.0, 1),  # all busy: still one
    (1, 2, 0.0, 1),  # OMP_NUM_THREADS=1 is respected
    (16, 16, 5.6, 10),
])
def test_cpu_training_uses_only_idle_cores(default, cores, busy, expected):
    assert idle_cpu_threads(default, cores, busy) == expected


def test_busy_cores_sees_a_spinning_process():
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy = busy_cores(0.5)
    finally:
        spinner.kill()
    assert 0.8 <= busy <= (os.cpu_count() or 1)
