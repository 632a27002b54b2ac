"""Lazy loading of a backend's entry module, so the CLI starts without any framework installed."""

from __future__ import annotations

import importlib
from types import ModuleType

from ddgan_core.errors import DDGANError

BACKENDS = {"torch": ("backends.torch_cuda.entry", "torch"), "tinygrad": ("backends.tinygrad.entry", "tinygrad")}


def load_backend(name: str) -> ModuleType:
    """The entry module of backend `name` (train, sample, ...), or a one-line install hint."""
    if name not in BACKENDS:
        raise DDGANError(f"unknown backend '{name}' (known: {', '.join(BACKENDS)})")
    module, extra = BACKENDS[name]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in ("torch", "tinygrad", "safetensors"):
            raise DDGANError(f"the {name} backend needs {exc.name}: pip install 'ddgan[{extra}]'") from None
        raise
