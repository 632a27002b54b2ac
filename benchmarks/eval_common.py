"""What the evaluation benchmark scripts share: running `ddgan` as a user would, and naming the machine."""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import subprocess
import sys


def ddgan(*args: str, env: dict[str, str] | None = None) -> str:
    """Run `ddgan ARGS` (this checkout's CLI) with extra environment variables `env` and return its
    stdout; print the exact command first."""
    prefix = "".join(f"{k}={v} " for k, v in (env or {}).items())
    print(f"$ {prefix}ddgan {shlex.join(args)}", flush=True)
    result = subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True,
                            env={**os.environ, **(env or {})})
    if result.returncode != 0:
        raise SystemExit(f"ddgan {shlex.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def ddgan_json(*args: str, env: dict[str, str] | None = None) -> dict:
    return json.loads(ddgan(*args, "--json", env=env))


def machine() -> str:
    """One line: CPU model, cores, Python and torch versions, date."""
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        import torch

        versions = f"torch {torch.__version__}"
    except ImportError:
        versions = "no torch"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu}, {cores} cores, Python {platform.python_version()}, {versions}, {datetime.date.today()}"
