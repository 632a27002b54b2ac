"""Test-session setup: one math thread per process.

The suite runs in parallel processes (pytest -n 2) on small machines; a second BLAS/OpenMP
thread per process only spins waiting for a busy core and made PyTorch tests several times
slower. Subprocesses started by tests inherit the setting.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
