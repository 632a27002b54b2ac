"""The checkpoint format shared by every backend (DESIGN 6).

One safetensors file holds float32 NCHW tensors under backend-neutral names, written atomically
(temporary file, then rename), with the step, the configuration and the format in its metadata:
- `generator.<param>`, `generator_ema.<param>`, `discriminator.<param>`: network weights;
- `optimizer_g.exp_avg.<param>`, `optimizer_g.exp_avg_sq.<param>` (and `optimizer_d.`): Adam moments,
  with the shared Adam step count in the metadata (`optimizer_step`);
- `rng.<name>`: backend random-generator states (uint8), for bit-reproducible resume.
The metadata also holds each tensor's CRC-32 (`crc32`), checked on load: safetensors checks the
header and the sizes, not the bytes, so damage that keeps a file's size would otherwise load.
A generator trained with one backend therefore samples with the other.
"""

from __future__ import annotations

import json
import os
import pathlib
import zlib
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from ddgan_core.config import Config, ConfigError
from ddgan_core.errors import DDGANError
from ddgan_core.output_paths import replaced_atomically
from ddgan_core.rundir import last_checkpoint_fallback

T = TypeVar("T")

FORMAT = "ddgan-checkpoint-v1"
CHECKSUMS = "crc32"  # metadata key: {tensor name: CRC-32 of its bytes}; absent from checkpoints before it
GENERATOR, GENERATOR_EMA, DISCRIMINATOR = "generator", "generator_ema", "discriminator"


class CheckpointError(DDGANError):
    """A checkpoint that is missing, unreadable, truncated, or of another architecture."""


class ResumeWarning(UserWarning):
    """A resumed run cannot continue the checkpoint's random stream exactly."""


def fresh_stream_seed(seed: int, rank: int, step: int) -> int:
    """The seed of a resumed process's random stream where it cannot continue the checkpoint's own
    (another backend's or device type's, or rank 0's of several processes): a function of (seed,
    rank, step), so such a resume is still reproducible and never replays the first steps' draws."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0])


def other_random_streams(checkpoint: "Checkpoint", own_key: str) -> list[str]:
    """The checkpoint's random-generator states (`rng.*`) that are not `own_key`: another backend's."""
    return sorted(k for k in checkpoint.tensors if k.startswith("rng.") and k != own_key)


def save_checkpoint(
    path: str | os.PathLike, tensors: dict[str, np.ndarray], *, step: int, config: Config, extra: dict | None = None
) -> pathlib.Path:
    """Write tensors and metadata to `path` atomically: readers never see a partial file."""
    from safetensors.numpy import save_file

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"format": FORMAT, "step": str(int(step)), "config": config.to_json()}
    metadata.update({key: json.dumps(value) for key, value in (extra or {}).items()})
    contiguous = {name: np.ascontiguousarray(value) for name, value in tensors.items()}
    metadata[CHECKSUMS] = json.dumps(tensor_checksums(contiguous))
    # Named before it exists, so a signal landing anywhere from its creation on is cleaned up
    # (mkstemp's name would be unknown if it landed as mkstemp returned).
    with replaced_atomically(path) as partial:
        save_file(contiguous, partial, metadata=metadata)
    return path


class Checkpoint:
    """A loaded checkpoint: tensors, step, configuration and extra metadata."""

    def __init__(self, path: pathlib.Path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
        self.path = path
        self.tensors = tensors
        try:
            self.step = int(metadata["step"])
        except ValueError:
            raise CheckpointError(f"{path}: its step {metadata['step']!r} is not an integer") from None
        self.config = _config_of(path, metadata)
        try:
            self.extra = {k: json.loads(v) for k, v in metadata.items() if k not in ("format", "step", "config", CHECKSUMS)}
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{path}: its metadata cannot be read ({exc})") from None

    def section(self, prefix: str) -> dict[str, np.ndarray]:
        """The tensors under `prefix.`, with the prefix removed (e.g. the EMA generator's weights)."""
        head = prefix + "."
        found = {name[len(head):]: value for name, value in self.tensors.items() if name.startswith(head)}
        if not found:
            raise CheckpointError(f"{self.path}: holds no '{prefix}' tensors")
        return found


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint, or raise CheckpointError with a one-line reason."""
    from safetensors.numpy import load_file

    path = pathlib.Path(path)
    metadata = _checked_metadata(path)
    tensors = _read(path, lambda: load_file(str(path)))
    if CHECKSUMS in metadata:
        _check_checksums(path, tensors, metadata[CHECKSUMS])
    return Checkpoint(path, tensors, metadata)


def checkpoint_config(path: str | os.PathLike) -> Config:
    """The configuration a checkpoint holds, read from its header alone (no tensor is read)."""
    path = pathlib.Path(path)
    return _config_of(path, _checked_metadata(path))


def _checked_metadata(path: pathlib.Path) -> dict[str, str]:
    """A ddgan checkpoint's header metadata, or CheckpointError: no file, a folder, not readable,
    another format, or without its step and configuration."""
    from safetensors import safe_open

    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder: name a .safetensors file (a run directory goes to --run)")
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")

    def read() -> dict[str, str]:
        with safe_open(str(path), framework="numpy") as handle:
            return handle.metadata() or {}

    metadata = _read(path, read)
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a ddgan checkpoint (format {metadata.get('format')!r}, expected {FORMAT!r})")
    missing = [key for key in ("step", "config") if key not in metadata]
    if missing:
        raise CheckpointError(f"{path}: a ddgan checkpoint without its {' and '.join(missing)} metadata")
    return metadata


def _read(path: pathlib.Path, read: Callable[[], T]) -> T:
    """read(), with the errors of a truncated or corrupt file as one CheckpointError that names the
    run's newest periodic checkpoint where there is one."""
    from safetensors import SafetensorError

    try:
        return read()
    except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt: {reason})"
                              f"{last_checkpoint_fallback(path)}") from None


def _config_of(path: pathlib.Path, metadata: dict[str, str]) -> Config:
    try:
        return Config.from_json(metadata["config"])
    except (ConfigError, ValueError, KeyError, TypeError, AttributeError) as exc:  # not a config object
        raise CheckpointError(f"{path}: its configuration cannot be read ({exc})") from None


def tensor_checksums(tensors: dict[str, np.ndarray]) -> dict[str, int]:
    """Each tensor's CRC-32 (zlib's: 0.14-0.23 s for a CIFAR-10 checkpoint's 0.44 GB on this CPU, RESULTS.md)."""
    return {name: zlib.crc32(np.ascontiguousarray(value).reshape(-1).view(np.uint8)) for name, value in tensors.items()}


def _check_checksums(path: pathlib.Path, tensors: dict[str, np.ndarray], stored: str) -> None:
    """Refuse a file whose tensors' bytes differ from the CRC-32s written with them, as a truncated one is."""
    try:
        expected = json.loads(stored)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: its metadata cannot be read ({exc})") from None
    found = tensor_checksums(tensors)
    expected = expected if isinstance(expected, dict) else {}
    damaged = sorted(name for name in {*found, *expected} if expected.get(name) != found.get(name))
    if damaged:
        raise CheckpointError(f"{path}: not a readable checkpoint (corrupt: {len(damaged)} of {len(found)} tensors "
                              f"fail their CRC-32 check, {damaged[0]} first){last_checkpoint_fallback(path)}")


def check_weights_match(path: pathlib.Path, expected: dict[str, tuple[int, ...]], found: dict[str, np.ndarray], what: str) -> None:
    """Refuse weights whose names or shapes differ from the network being built (another architecture)."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(n for n in set(expected) & set(found) if tuple(found[n].shape) != tuple(expected[n]))
    if missing or unexpected or wrong:
        detail = (f"{len(missing)} missing" if missing else "") + (f", {len(unexpected)} unexpected" if unexpected else "")
        if wrong:
            name = wrong[0]
            detail += f", shape of {name} is {tuple(found[name].shape)} not {tuple(expected[name])}"
        raise CheckpointError(f"{path}: its {what} is of another architecture ({detail.strip(', ')})")
