"""Data-parallel training with torch.distributed (torchrun; NCCL on GPUs, gloo on CPU).

Gradients are averaged by an explicit all-reduce after each backward pass rather than by the
DistributedDataParallel wrapper, because the R1 penalty needs a double backward, which DDP's
reducer does not support. Every rank starts from rank 0's weights (broadcast once, as DDP does:
the same seed alone would not do across machines whose torch builds initialise differently), so
with averaged gradients the weights stay identical.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ddgan_core.errors import DDGANError


@dataclass(frozen=True)
class Distributed:
    rank: int
    world_size: int
    local_rank: int

    @classmethod
    def single(cls) -> "Distributed":
        return cls(0, 1, 0)

    @classmethod
    def from_environment(cls, device_type: str) -> "Distributed":
        """Join the process group torchrun describes (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR...)."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size == 1:
            return cls.single()
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if not dist.is_initialized():
            if device_type == "cuda":
                torch.cuda.set_device(local_rank)  # before NCCL starts, so each process binds its own GPU
            dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
        return cls(dist.get_rank(), dist.get_world_size(), local_rank)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def broadcast_from_main(self, module: torch.nn.Module) -> None:
        """Give every rank rank 0's parameters and buffers, in place."""
        if self.world_size == 1:
            return
        with torch.no_grad():
            for tensor in module.state_dict().values():
                self._collective(dist.broadcast, tensor, src=0)

    def average_gradients(self, module: torch.nn.Module) -> None:
        if self.world_size == 1:
            return
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        self._collective(dist.all_reduce, flat)
        flat /= self.world_size
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def average_scalars(self, values: torch.Tensor) -> torch.Tensor:
        """The ranks' mean of `values`, reduced where the tensor lives (NCCL reduces only CUDA tensors)."""
        if self.world_size == 1:
            return values
        values = values.clone()
        self._collective(dist.all_reduce, values)
        return values / self.world_size

    def _collective(self, operation: Callable[..., object], tensor: torch.Tensor, **kwargs: object) -> None:
        """Run a collective; when it fails because another process stopped (its own error, printed
        by that process, says why), say so in one line rather than with gloo's traceback."""
        try:
            operation(tensor, **kwargs)
        except RuntimeError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DDGANError(f"rank {self.rank}: stopped, as another process of the run did ({reason})") from None

    def close(self) -> None:
        if self.world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()
