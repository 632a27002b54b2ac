"""The pieces of the PyTorch fast path shared by sampling and training (issue 7).

- `compile_network`: torch.compile (TorchInductor) of a network's forward, shapes specialised
  (each batch size gets its own kernels). Only modes that leave CUDA graphs to the caller are
  offered, because the fast sampler captures its whole chain as one CUDA graph itself.
- `to_channels_last`: NHWC weights for the convolutions (cuDNN's tensor-core layout for bf16).
- `use_fast_cuda_kernels`: TF32 tensor cores for fp32 work and cuDNN's convolution autotuner.
- `host_to_device`: a numpy batch to the device through page-locked memory, without blocking
  the host, so the next batch is prepared while the device works (training images that fit
  are held on the device instead: device_data.py).

torch.compile cannot run a double backward through a compiled module (AOTAutograd refuses it), so
the R1 step is compiled as a function instead (r1_gradients.py).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ddgan_core.errors import DDGANError

COMPILE_MODES = ("default", "max-autotune-no-cudagraphs")


def check_compile_mode(mode: str, also: tuple[str, ...] = ()) -> str:
    """`mode` if TorchInductor knows it (or it is one of `also`, a caller's own words such as bench's
    "none"), else a one-line error listing every mode the caller accepts."""
    known = (*COMPILE_MODES, *also)
    if mode not in known:
        raise DDGANError(f"unknown compile mode '{mode}' (known: {', '.join(known)})")
    return mode


def compile_network(module: nn.Module | Callable, mode: str = "default") -> nn.Module | Callable:
    """`module` (or a pure tensor function, such as the R1 step) compiled by TorchInductor, sharing
    its parameters; compiles on the first call.

    dynamic=False: each input shape gets kernels of its own. Compiled code is cached per class,
    so a second instance of the same network with the same shapes compiles nothing new.
    """
    return torch.compile(module, mode=check_compile_mode(mode), dynamic=False)


def use_fast_cuda_kernels() -> None:
    """On CUDA: fp32 matmuls and convolutions on TF32 tensor cores, and cuDNN's autotuner (each new
    input shape times the convolution algorithms once and keeps the fastest; training and sampling
    run fixed shapes, and the fast sampler's warm-up does the timing before its graph is captured)."""
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True


def to_channels_last(module: nn.Module) -> nn.Module:
    """Convert the module's 4-D weights to channels_last in place (parameter names and values unchanged)."""
    return module.to(memory_format=torch.channels_last)


def host_to_device(batch: np.ndarray | torch.Tensor, device: torch.device, channels_last: bool = False) -> torch.Tensor:
    """The batch on `device`: from the host to CUDA through page-locked memory without blocking
    the host; a tensor already on the device stays where it is.

    `pin_memory()` takes a block of PyTorch's caching host allocator, which records the copy's
    stream and reuses the block only once the copy is done. Images can be put in channels_last.
    """
    tensor = torch.from_numpy(batch) if isinstance(batch, np.ndarray) else batch
    if device.type == "cuda" and tensor.device.type == "cpu":
        tensor = tensor.pin_memory().to(device, non_blocking=True)
    if channels_last and tensor.dim() == 4:
        tensor = tensor.contiguous(memory_format=torch.channels_last)
    return tensor
