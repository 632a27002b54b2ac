"""The endless, resumable, sharded stream of training batches.

Think of the data as one infinite sequence: epoch 0's permutation of the dataset, then epoch
1's, and so on, each permutation (and each position's flip bit) drawn from (seed, epoch) alone.
Step s takes the next global batch of `batch_size * world_size` positions of that sequence, and
rank r takes its r-th contiguous slice. Hence:

- the batch at step s depends only on (seed, s, rank, world_size), so a run resumed at step s
  (start_step=s) sees exactly the batches an uninterrupted run would, with nothing replayed;
- within an epoch the ranks' batches are disjoint and together cover every item exactly once;
- the global batch does not depend on how it is split across ranks.

A batch may straddle two epochs; no item is ever dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

import numpy as np

from ddgan_core.datasets.base import Dataset, DatasetError

_PERMUTATION, _FLIPS = 0, 1  # sub-streams of each epoch's seed


def batch_stream(
    dataset: Dataset,
    batch_size: int,
    *,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    start_step: int = 0,
    random_flip: bool = False,
) -> Iterator[np.ndarray]:
    """Yield this rank's batch for step start_step, start_step + 1, ... forever.

    `batch_size` is per rank (the global batch is batch_size * world_size). `random_flip`
    mirrors images horizontally with probability 1/2; it does not apply to point data.
    """
    flip = random_flip and dataset.is_image
    for indices, flips in index_stream(len(dataset), batch_size, seed=seed, rank=rank, world_size=world_size,
                                       start_step=start_step):
        batch = dataset.get(indices)
        if flip:
            batch[flips] = batch[flips, ..., ::-1]
        yield batch


def index_stream(
    length: int, batch_size: int, *, seed: int, rank: int = 0, world_size: int = 1, start_step: int = 0,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """`batch_indices` for step start_step, start_step + 1, ... forever: what `batch_stream` gathers,
    for a backend that holds the dataset on its device and gathers (and flips) there."""
    step = start_step
    while True:
        yield batch_indices(length, batch_size, seed=seed, step=step, rank=rank, world_size=world_size)
        step += 1


def batch_indices(
    length: int, batch_size: int, *, seed: int, step: int, rank: int = 0, world_size: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """(dataset indices (batch_size,), flip bits (batch_size,)) of rank `rank` at step `step`."""
    _check(length, batch_size, seed, step, rank, world_size)
    first = (step * world_size + rank) * batch_size
    positions = np.arange(first, first + batch_size, dtype=np.int64)
    epochs, offsets = np.divmod(positions, length)
    indices = np.empty(batch_size, dtype=np.int64)
    flips = np.empty(batch_size, dtype=bool)
    for epoch in range(int(epochs[0]), int(epochs[-1]) + 1):
        order, flip_bits = _epoch(length, seed, epoch)
        here = epochs == epoch
        indices[here] = order[offsets[here]]
        flips[here] = flip_bits[offsets[here]]
    return indices, flips


@lru_cache(maxsize=8)
def _epoch(length: int, seed: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    """Epoch `epoch`'s permutation of range(length) and a flip bit per position, from (seed, epoch)."""
    order = np.random.default_rng([seed, epoch, _PERMUTATION]).permutation(length)
    flips = np.random.default_rng([seed, epoch, _FLIPS]).integers(0, 2, size=length).astype(bool)
    order.flags.writeable = flips.flags.writeable = False
    return order, flips


def _check(length: int, batch_size: int, seed: int, step: int, rank: int, world_size: int) -> None:
    if length < 1:
        raise DatasetError("cannot draw batches from an empty dataset")
    if batch_size < 1:
        raise DatasetError(f"batch size must be at least 1, got {batch_size}")
    if world_size < 1 or not 0 <= rank < world_size:
        raise DatasetError(f"rank {rank} is not in a world of size {world_size}")
    if seed < 0 or step < 0:
        raise DatasetError(f"seed and step must be non-negative, got seed {seed}, step {step}")
