"""Batches of long non-training work (sampling, feature extraction) with a rich progress bar.

The bar goes to stderr, so `--json` output on stdout stays clean, and it is shown only when a
`label` is given and there is more than one batch: work done inside training (which has its own
bar, and rich allows one live display at a time) passes no label.
"""

from __future__ import annotations

from collections.abc import Iterator

from ddgan_core.errors import DDGANError


def batch_ranges(total: int, size: int, label: str | None = None) -> Iterator[tuple[int, int]]:
    """(start, count) of each consecutive batch of at most `size` of `total` items."""
    if size < 1:
        raise DDGANError(f"batch size must be positive, got {size}")
    starts = range(0, total, size)
    if label is None or len(starts) < 2:
        for start in starts:
            yield start, min(size, total - start)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=total)
        for start in starts:
            count = min(size, total - start)
            yield start, count
            bar.advance(task, count)
