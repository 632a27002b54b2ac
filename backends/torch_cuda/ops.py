"""ArrayOps for PyTorch tensors (the few operations ddgan_core's maths needs)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


class TorchOps:
    """ddgan_core.ops.ArrayOps over torch tensors, with noise from one explicit torch.Generator."""

    def __init__(self, generator: torch.Generator) -> None:
        self.generator = generator
        # keyed by the table's identity; the table itself is kept so its id cannot be reused
        self._tables: dict[tuple[int, torch.device, torch.dtype], tuple[np.ndarray, torch.Tensor]] = {}

    def per_sample(self, table: np.ndarray, index: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        key = (id(table), like.device, like.dtype)
        if key not in self._tables:
            self._tables[key] = (table, torch.as_tensor(np.asarray(table), dtype=like.dtype, device=like.device))
        return self._tables[key][1][index].reshape((-1,) + (1,) * (like.dim() - 1))

    def randn_like(self, x: torch.Tensor) -> torch.Tensor:
        return torch.randn(x.shape, generator=self.generator, device=x.device, dtype=x.dtype)

    def softplus(self, x: torch.Tensor) -> torch.Tensor:
        return F.softplus(x)

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean()

    def sum_per_sample(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1).sum(dim=1)
