"""Fast sampling: the core's reverse chain over static buffers, one compiled step, and on CUDA one CUDA graph.

The chain is the core's (`ddgan_core.sampling`): `chain_steps` gives each step's coefficients,
`run_chain` walks the steps, and each step is the generator's x0' followed by the core's bridge
draw (`kernels.bridge_draw`). What changes is where the randomness comes from. x_T, every step's
latent z and every step's posterior noise are drawn from the seeded torch.Generator into
preallocated buffers before each batch, in the order `sample_with` draws them (x_T, then per step
z and, except into level 0, the noise), so a batch sees the same random numbers as the eager path
with the same seed: fp32 samples agree up to floating-point reassociation, bf16 samples up to bf16
rounding. Everything after the draws reads only those buffers, so it can be:

- compiled: one step, the generator and the bridge draw a x0' + b x_t + c eps, as one TorchInductor
  graph (`compile_network`) with NHWC weights and inputs, so the draw and the fp32 cast fuse into
  the generator's last elementwise kernel. The step's coefficients are 0-d device tensors, inputs
  of the graph, so every step of every chain length shares one compiled graph per batch size (the
  step into level 0 is the bridge with a = 1, b = 0 and no noise: exactly x0', as the core's chain
  returns it). Compiling the whole chain instead would take K copies of the generator through
  TorchInductor: on this project's CPU 2-3 times the compile time for T = 4, per chain length;
- bf16: the generator under autocast (fp32 weights, fp32 chain arithmetic);
- captured (CUDA): the K compiled steps recorded once as one CUDA graph and replayed per batch, so a
  batch costs 2K random draws and one graph launch.

A last batch smaller than the buffers fills their first rows and keeps the first rows of the output
(the rest hold the previous batch's numbers, or zeros): G treats every sample independently.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from backends.torch_cuda.compile import compile_network, to_channels_last
from ddgan_core import kernels
from ddgan_core.batch_progress import batch_ranges
from ddgan_core.config import PRECISIONS, Config, item_shape
from ddgan_core.errors import DDGANError
from ddgan_core.sampling import ChainStep, chain_levels, chain_steps, gather_batches, run_chain
from ddgan_core.schedule import schedule_from_config

CAPTURE_WARMUP_RUNS = 2  # chains run on a side stream before capture: compilation, autotuning, cuDNN plans


class FastSampler:
    """Draws `sample_with`'s samples (same seed, same batching) through static buffers.

    precision: "fp32" or "bf16" (autocast of the generator). compile_mode: a TorchInductor mode, or
    None for the eager step. cuda_graph: capture the chain as one CUDA graph (CUDA only).
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
        schedule = schedule_from_config(config.diffusion)
        self.steps = chain_steps(schedule, chain_levels(schedule.timesteps, steps))
        self.step_index = {step: i for i, step in enumerate(self.steps)}  # the step's row in every buffer
        self.shape = item_shape(config)
        self.channels_last = channels_last and len(self.shape) == 3
        if self.channels_last:
            to_channels_last(generator)
        self.generator = generator
        self.autocast = precision == "bf16"
        self.step = self._step if compile_mode is None else compile_network(self._step, compile_mode)
        calls = len(self.steps)
        self.x_T = torch.zeros((batch_size, *self.shape), device=device)
        self.latents = torch.zeros((calls, batch_size, config.generator.nz), device=device)
        self.noises = torch.zeros((calls, batch_size, *self.shape), device=device)  # into level 0: stays zero
        self.labels = [torch.full((batch_size,), step.label, dtype=torch.long, device=device) for step in self.steps]
        self.coefficients = [torch.tensor([step.a, step.b, step.noise_scale], device=device) for step in self.steps]
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
        for i, step in enumerate(self.steps):
            torch.randn((m, self.latents.shape[-1]), out=self.latents[i, :m], **draw)
            if step.s != 0:
                torch.randn((m, *self.shape), out=self.noises[i, :m], **draw)

    def _step(self, x_t: torch.Tensor, labels: torch.Tensor, latent: torch.Tensor, coefficients: torch.Tensor,
              noise: torch.Tensor) -> torch.Tensor:
        """One step of the chain: x0' = G(x_t, z, t - 1), then the core's bridge draw around it.
        Compiled as one graph (NHWC in and out, so every step's inputs look alike)."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            x0_pred = self.generator(x_t, labels, latent).float()
        a, b, noise_scale = coefficients.unbind(0)
        x_s = kernels.bridge_draw(x0_pred, x_t, a, b, noise_scale, noise)
        return x_s.contiguous(memory_format=torch.channels_last) if self.channels_last else x_s

    def _chain(self) -> torch.Tensor:
        """The core's chain over the buffers (all B rows): reads nothing but the buffers."""
        def advance(x_t: torch.Tensor, step: ChainStep) -> torch.Tensor:
            i = self.step_index[step]
            return self.step(x_t, self.labels[i], self.latents[i], self.coefficients[i], self.noises[i])

        x_T = self.x_T.contiguous(memory_format=torch.channels_last) if self.channels_last else self.x_T
        return run_chain(x_T, self.steps, advance)

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
    def batches(self, n: int, seed: int, progress: str | None = None) -> Iterator[np.ndarray]:
        """n samples in network units, float32 (m, ...) a batch at a time, on the host: the same draws
        as sample_with(..., seed, batch_size); `progress` labels a progress bar over the batches."""
        rng = torch.Generator(device=self.device)
        rng.manual_seed(seed)
        for _start, m in batch_ranges(n, self.batch_size, progress):
            yield self.run_batch(rng, m).contiguous().cpu().numpy()  # a copy: the next replay overwrites the output

    def sample(self, n: int, seed: int, progress: str | None = None) -> np.ndarray:
        """batches' n samples as one array (N, ...)."""
        return gather_batches(self.batches(n, seed, progress), n)


def fastest_sampler(generator: nn.Module, config: Config, batch_size: int, device: torch.device,
                    steps: int | None = None) -> FastSampler:
    """The fastest settings for the device: on CUDA bf16 autocast, compiled, one CUDA graph;
    on the CPU compiled fp32 (the project keeps bf16 to CUDA)."""
    on_cuda = device.type == "cuda"
    return FastSampler(generator, config, batch_size, device, steps=steps, precision="bf16" if on_cuda else "fp32",
                       compile_mode="default", cuda_graph=on_cuda)

