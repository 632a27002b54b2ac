"""tinygrad's compiled kernels, kept on disk between processes.

tinygrad turns every kernel into a program (index simplification, optimisation, rendering,
compiling). For the training step of the `tiny` preset that code generation takes about two
minutes on a 2-core CPU, and tinygrad keeps its results in memory only
(`tinygrad.codegen.to_program_cache`, keyed by the kernel's AST, the renderer and the settings
that change code); its own disk cache holds just the compiler's output, which saves little.
This module stores that map in tinygrad's cache folder, so a later process (a resumed run,
`ddgan sample`, the next test) starts with every kernel generated before on this machine.

The file is per tinygrad version; programs are built for this machine's CPU ("native"), as in
tinygrad's own cache. `CACHELEVEL=0` (tinygrad's switch) or `DDGAN_TINYGRAD_PROGRAM_CACHE=0`
turn it off.
"""

from __future__ import annotations

import importlib.metadata
import os
import pathlib
import pickle
import tempfile

from tinygrad.codegen import to_program_cache
from tinygrad.helpers import CACHELEVEL, cache_dir

MAX_PROGRAMS = 5_000  # about 90 MB; beyond this the file starts afresh rather than grow without bound

_state = {"restored": False, "saved_count": -1}


def enabled() -> bool:
    return CACHELEVEL.value >= 1 and os.environ.get("DDGAN_TINYGRAD_PROGRAM_CACHE", "1") != "0"


def cache_path() -> pathlib.Path:
    return pathlib.Path(cache_dir) / f"ddgan-programs-tinygrad-{importlib.metadata.version('tinygrad')}.pkl"


def _read() -> dict:
    try:
        with cache_path().open("rb") as handle:
            programs = pickle.load(handle)
        return programs if isinstance(programs, dict) else {}
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, TypeError, ValueError):
        return {}  # no cache yet, or one that cannot be read: generate the kernels again


def restore() -> None:
    """Add the stored programs to tinygrad's in-memory map (once per process)."""
    if _state["restored"] or not enabled():
        return
    _state["restored"] = True
    for key, program in _read().items():
        to_program_cache.setdefault(key, program)
    _state["saved_count"] = len(to_program_cache)


def persist() -> None:
    """Store the programs generated since the last call, merged with what other processes stored."""
    if not enabled() or len(to_program_cache) == _state["saved_count"]:
        return
    programs = {**_read(), **to_program_cache}
    if len(programs) > MAX_PROGRAMS:
        programs = dict(to_program_cache)
    path, tmp = cache_path(), None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(handle, "wb") as out:
            pickle.dump(programs, out, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)  # atomic: readers see the old file or the new one
    except (OSError, pickle.PicklingError):
        pass  # a read-only or full disk only costs the next process the code generation
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    _state["saved_count"] = len(to_program_cache)
