"""Fast sampling: the core's reverse chain over static buffers, compiled, and on CUDA one CUDA graph.

The chain is `ddgan_core.sampling.sample_chain`, unchanged: its python-float coefficients from
`ddgan_core.kernels` become constants of the captured work. What changes is where the randomness
comes from. x_T, every step's latent z and every step's posterior noise are drawn from the seeded
torch.Generator into preallocated buffers before each batch, in the order `sample_with` draws them
(x_T, then per step z and, except into level 0, the noise), so a batch sees the same random numbers
as the eager path with the same seed: fp32 samples agree up to floating-point reassociation, bf16
samples up to bf16 rounding. Everything after the draws reads only those buffers, so it can be:

- compiled: the generator through TorchInductor (`compile_network`), NHWC weights and inputs;
- bf16: the generator under autocast (fp32 weights, fp32 chain arithmetic between the calls);
- captured (CUDA): the K generator calls and the posterior updates recorded once as one CUDA
  graph and replayed per batch, so a batch costs 2K random draws and one graph launch.

Kernel fusion stops at the generator: the chain's coefficient code is numpy, which Dynamo cannot
trace without graph breaks, so each posterior update is five captured elementwise kernels (by bytes
moved, tens of microseconds at batch 1000 against tens of milliseconds for a CIFAR-10 generator
call: an estimate, not a measurement). A last batch smaller than the buffers fills their first
rows and keeps the first rows of the output (the rest hold the previous batch's numbers, or
zeros): G treats every sample independently.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from backends.torch_cuda.compile import compile_network, to_channels_last
from ddgan_core.config import PRECISIONS, Config, item_shape
from ddgan_core.errors import DDGANError
from ddgan_core.sampling import chain_levels, sample_chain
from ddgan_core.schedule import schedule_from_config

CAPTURE_WARMUP_RUNS = 2  # chains run on a side stream before capture: compilation, autotuning, cuDNN plans


class _BufferNoise:
    """The one ArrayOps operation the chain uses, `randn_like`, handing out pre-drawn noise buffers in order."""

    def __init__(self, noises: Iterator[torch.Tensor]) -> None:
        self._noises = noises

    def randn_like(self, x: torch.Tensor) -> torch.Tensor:
        noise = next(self._noises)
        if noise.shape != x.shape:
            raise DDGANError(f"noise buffer of shape {tuple(noise.shape)} does not fit x of shape {tuple(x.shape)}")
        return noise


class FastSampler:
    """Draws `sample_with`'s samples (same seed, same batching) through static buffers.

    precision: "fp32" or "bf16" (autocast of the generator). compile_mode: a TorchInductor mode, or
    None for the eager generator. cuda_graph: capture the chain as one CUDA graph (CUDA only).
    The generator's weights are converted to channels_last in place when `channels_last` is set.
    """

    def __init__(
        self, generator: nn.Module, config: Config, batch_size: int, device: torch.device, *,
        steps: int | None = None, precision: str = "fp32", compile_mode: str | None = "default",
        cuda_graph: bool = False, channels_last: bool = True,
    ) -> None:
        if batch_size < 1:
            raise DDGANError(f"batch size must be at least 1, got {batch_size}")
        if precision not in PRECISIONS:
            raise DDGANError(f"unknown precision '{precision}' (known: {', '.join(PRECISIONS)})")
        if cuda_graph and device.type != "cuda":
            raise DDGANError("a CUDA graph needs a CUDA device")
        self.config, self.device, self.batch_size = config, device, batch_size
        self.schedule = schedule_from_config(config.diffusion)
        self.levels = chain_levels(self.schedule.timesteps, steps)
        self.shape = item_shape(config)
        self.channels_last = channels_last and len(self.shape) == 3
        if self.channels_last:
            to_channels_last(generator)
        self.network = generator if compile_mode is None else compile_network(generator, compile_mode)
        self.autocast = precision == "bf16"
        calls = len(self.levels) - 1
        noisy = sum(1 for s in self.levels[1:] if s != 0)
        self.x_T = torch.zeros((batch_size, *self.shape), device=device)
        self.latents = torch.zeros((calls, batch_size, config.generator.nz), device=device)
        self.noises = torch.zeros((noisy, batch_size, *self.shape), device=device)
        self.labels = {t - 1: torch.full((batch_size,), t - 1, dtype=torch.long, device=device) for t in self.levels[:-1]}
        self.graph: torch.cuda.CUDAGraph | None = None
        self.output: torch.Tensor | None = None
        if cuda_graph:
            self._capture()
        elif compile_mode is not None:
            self._warm_up(1)  # compile now rather than in the first batch

    # --- one batch -----------------------------------------------------------------------------
    def _draw(self, rng: torch.Generator, m: int) -> None:
        """The batch's random numbers into the first m rows of the buffers, in sample_with's order."""
        draw = {"generator": rng, "device": self.device}
        torch.randn((m, *self.shape), out=self.x_T[:m], **draw)
        for i in range(len(self.latents)):
            torch.randn((m, self.latents.shape[-1]), out=self.latents[i, :m], **draw)
            if i < len(self.noises):
                torch.randn((m, *self.shape), out=self.noises[i, :m], **draw)

    def _chain(self) -> torch.Tensor:
        """The core's chain over the buffers (all B rows): reads nothing but the buffers."""
        latents = iter(self.latents)

        def predict_x0(x_t: torch.Tensor, label: int) -> torch.Tensor:
            if self.channels_last:
                x_t = x_t.contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                return self.network(x_t, self.labels[label], next(latents)).float()

        return sample_chain(predict_x0, self.x_T, self.schedule, _BufferNoise(iter(self.noises)), self.levels)

    def _warm_up(self, runs: int) -> None:
        """Run the chain on finite buffers `runs` times: compilation, autotuning, cuDNN plans."""
        self._draw(torch.Generator(device=self.device).manual_seed(0), self.batch_size)
        with torch.no_grad():
            for _ in range(runs):
                self._chain()

    def _capture(self) -> None:
        """Warm up on a side stream (as graph capture requires), then record one chain as a CUDA graph."""
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            self._warm_up(CAPTURE_WARMUP_RUNS)
        torch.cuda.current_stream(self.device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), torch.no_grad():
            self.output = self._chain()

    def run_batch(self, rng: torch.Generator, m: int) -> torch.Tensor:
        """Samples of one batch of m <= batch_size, on the device (a view of a static buffer with a graph)."""
        self._draw(rng, m)
        if self.graph is not None:
            self.graph.replay()
            return self.output[:m]
        with torch.no_grad():
            return self._chain()[:m]

    # --- many batches --------------------------------------------------------------------------
    def sample(self, n: int, seed: int) -> np.ndarray:
        """n samples in network units, float32 (N, ...): the same draws as sample_with(..., seed, batch_size)."""
        rng = torch.Generator(device=self.device)
        rng.manual_seed(seed)
        outputs = []
        for start in range(0, n, self.batch_size):
            outputs.append(self.run_batch(rng, min(self.batch_size, n - start)).contiguous().cpu().numpy())
        return np.concatenate(outputs)


def fastest_sampler(generator: nn.Module, config: Config, batch_size: int, device: torch.device,
                    steps: int | None = None) -> FastSampler:
    """The fastest settings for the device: on CUDA bf16 autocast, compiled, one CUDA graph;
    on the CPU compiled fp32 (the project keeps bf16 to CUDA)."""
    on_cuda = device.type == "cuda"
    return FastSampler(generator, config, batch_size, device, steps=steps, precision="bf16" if on_cuda else "fp32",
                       compile_mode="default", cuda_graph=on_cuda)

