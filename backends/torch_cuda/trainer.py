"""The DDGAN training step in PyTorch (DESIGN 2.4): one D update, then one G update.

Every coefficient, forward draw and loss comes from ddgan_core; this file supplies the networks,
autograd, Adam, the EMA copy and data-parallel gradient averaging. The D step at R1 steps is one
function of D's weights (r1_gradients.py: the penalty's double backward as nested torch.func.grad).

With `train.compile` (the fast path) both networks hold channels_last weights, images enter in
channels_last, and everything runs compiled by TorchInductor: G and D as modules (forward and
backward), and the R1 step's function whole.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from backends.torch_cuda.compile import compile_network, host_to_device, to_channels_last
from backends.torch_cuda.distributed import Distributed
from backends.torch_cuda.networks import build_discriminator, build_generator
from backends.torch_cuda.ops import TorchOps
from backends.torch_cuda.r1_gradients import r1_step_gradients, set_gradients
from ddgan_core import losses
from ddgan_core.batch_progress import batch_ranges
from ddgan_core.checkpoint import (
    DISCRIMINATOR, GENERATOR, GENERATOR_EMA, Checkpoint, ResumeWarning, check_weights_match, fresh_stream_seed,
    other_random_streams,
)
from ddgan_core.config import Config, item_shape
from ddgan_core.diffusion import DiffusionProcess
from ddgan_core.sampling import chain_levels, join_batches, sample_chain
from ddgan_core.schedule import schedule_from_config

RNG_KEY = "rng.torch_generator"


class TorchTrainer:
    """Networks, optimisers and the step of one DDGAN run on one device (one rank)."""

    def __init__(self, config: Config, device: torch.device, dist: Distributed | None = None) -> None:
        self.config, self.device = config, device
        self.dist = dist or Distributed.single()
        train = config.train
        torch.manual_seed(train.seed)  # the initial weights (rank 0's are broadcast below)
        self.generator = build_generator(config).to(device)
        self.discriminator = build_discriminator(config).to(device)
        if train.compile:
            to_channels_last(self.generator)
            to_channels_last(self.discriminator)
        self.dist.broadcast_from_main(self.generator)
        self.dist.broadcast_from_main(self.discriminator)
        self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False).eval()
        fused = device.type == "cuda"
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=train.lr_g, betas=(train.beta1, train.beta2), fused=fused)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=train.lr_d, betas=(train.beta1, train.beta2), fused=fused)
        self.rng = torch.Generator(device=device)
        self.rng.manual_seed(train.seed * 1_000_003 + self.dist.rank)
        self.ops = TorchOps(self.rng)
        self.schedule = schedule_from_config(config.diffusion)
        self.process = DiffusionProcess(self.schedule, self.ops)
        self.autocast = config.train.precision == "bf16"
        self._last_r1 = torch.zeros((), device=device)
        self._g = compile_network(self.generator) if train.compile else self.generator
        self._d = compile_network(self.discriminator) if train.compile else self.discriminator
        r1_step = r1_step_gradients(self.discriminator, train.r1_gamma, self.ops, self.autocast)
        self._r1_step = compile_network(r1_step) if train.compile else r1_step

    # --- the step -------------------------------------------------------------------------
    def set_learning_rates(self, lr_g: float, lr_d: float) -> None:
        for group in self.opt_g.param_groups:
            group["lr"] = lr_g
        for group in self.opt_d.param_groups:
            group["lr"] = lr_d

    def _labels(self, n: int) -> torch.Tensor:
        return torch.randint(0, self.schedule.timesteps, (n,), generator=self.rng, device=self.device)

    def _latent(self, n: int) -> torch.Tensor:
        return torch.randn((n, self.config.generator.nz), generator=self.rng, device=self.device)

    def _fake(self, x0: torch.Tensor, label: torch.Tensor, x_next: torch.Tensor) -> torch.Tensor:
        """x_k' ~ q(x_k | x_{k+1}, x_0 = G(x_{k+1}, z, k))."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            x0_pred = self._g(x_next, label, self._latent(len(x0))).float()
        return self.process.posterior_sample(x0_pred, x_next, label)

    def _logits(self, x_prev: torch.Tensor, x_next: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """D's logits in fp32."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            return self._d(x_prev, x_next, label).float()

    def train_step(self, batch: np.ndarray, step: int) -> dict[str, Any]:
        train = self.config.train
        x0 = host_to_device(batch, self.device, channels_last=train.compile)
        n = len(x0)
        # D step: real pairs against detached fakes, R1 on real x_k every lazy_reg steps.
        self.discriminator.requires_grad_(True)
        label = self._labels(n)
        x_k, x_next = self.process.real_pair(x0, label)
        with torch.no_grad():
            x_fake = self._fake(x0, label, x_next)
        self.opt_d.zero_grad(set_to_none=True)
        if train.r1_gamma > 0 and losses.r1_due(step, train.lazy_reg):
            weights = {name: w.detach() for name, w in self.discriminator.named_parameters()}
            gradients, (loss_d, self._last_r1) = self._r1_step(weights, x_k, x_next, x_fake, label)
            set_gradients(self.discriminator, gradients)
        else:
            loss_d = losses.discriminator_loss(self._logits(x_k, x_next, label), self._logits(x_fake, x_next, label), self.ops)
            loss_d.backward()
        self.dist.average_gradients(self.discriminator)
        self.opt_d.step()
        # G step: a fresh label, pair and latent; D frozen.
        self.discriminator.requires_grad_(False)
        label = self._labels(n)
        x_k, x_next = self.process.real_pair(x0, label)
        loss_g = losses.generator_loss(self._logits(self._fake(x0, label, x_next), x_next, label), self.ops)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.dist.average_gradients(self.generator)
        self.opt_g.step()
        self._update_ema()
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), "r1": self._last_r1.detach()}

    @torch.no_grad()
    def _update_ema(self) -> None:
        ema = list(self.generator_ema.parameters())
        torch._foreach_lerp_(ema, [p.detach() for p in self.generator.parameters()], losses.ema_weight(self.config.train.ema_decay))

    def read_scalars(self, values: dict[str, Any]) -> dict[str, float]:
        stacked = self.dist.average_scalars(torch.stack([values[k].float() for k in values]))
        return dict(zip(values, stacked.cpu().tolist()))

    # --- sampling ---------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, seed: int) -> np.ndarray:
        return sample_with(self.generator_ema, self.config, n, seed, self.device)

    # --- checkpoint state --------------------------------------------------------------------
    def optimizer_step(self) -> int:
        states = list(self.opt_g.state.values())
        return int(states[0]["step"]) if states else 0

    def state(self) -> dict[str, np.ndarray]:
        tensors = {}
        for prefix, module in ((GENERATOR, self.generator), (GENERATOR_EMA, self.generator_ema), (DISCRIMINATOR, self.discriminator)):
            tensors.update(_numpy_state(prefix, module))
        for prefix, opt, module in (("optimizer_g", self.opt_g, self.generator), ("optimizer_d", self.opt_d, self.discriminator)):
            for name, p in module.named_parameters():
                state = opt.state.get(p)
                if state:
                    tensors[f"{prefix}.exp_avg.{name}"] = state["exp_avg"].detach().cpu().numpy()
                    tensors[f"{prefix}.exp_avg_sq.{name}"] = state["exp_avg_sq"].detach().cpu().numpy()
        tensors[RNG_KEY] = self.rng.get_state().cpu().numpy()
        return tensors

    def load_state(self, checkpoint: Checkpoint) -> None:
        """Restore networks, Adam moments and the random generator from a checkpoint."""
        for prefix, module in ((GENERATOR, self.generator), (GENERATOR_EMA, self.generator_ema), (DISCRIMINATOR, self.discriminator)):
            load_module(module, checkpoint, prefix)
        step = int(checkpoint.extra.get("optimizer_step", 0))
        for prefix, opt, module in (("optimizer_g", self.opt_g, self.generator), ("optimizer_d", self.opt_d, self.discriminator)):
            state = {}
            for index, (name, _) in enumerate(module.named_parameters()):
                key = f"{prefix}.exp_avg.{name}"
                if key in checkpoint.tensors:
                    state[index] = {
                        "step": torch.tensor(float(step)),
                        "exp_avg": torch.from_numpy(checkpoint.tensors[key]),
                        "exp_avg_sq": torch.from_numpy(checkpoint.tensors[f"{prefix}.exp_avg_sq.{name}"]),
                    }
            # through load_state_dict, so torch places each tensor (and the step) as this optimiser needs
            opt.load_state_dict({"state": state, "param_groups": opt.state_dict()["param_groups"]})
            for p in module.parameters():  # and in each parameter's own layout (channels_last when compiled):
                moments = opt.state.get(p, {})  # CUDA's fused Adam refuses moments strided otherwise
                for key in ("exp_avg", "exp_avg_sq"):
                    if key in moments:
                        moments[key] = torch.empty_like(p).copy_(moments[key])
        self._restore_rng(checkpoint.tensors.get(RNG_KEY), checkpoint.step, other_random_streams(checkpoint, RNG_KEY))

    def _restore_rng(self, saved: np.ndarray | None, step: int, others: list[str]) -> None:
        """Continue the checkpoint's random stream where it is this process's own (one process, a
        generator of the same device type), so a resumed run equals an uninterrupted one. Otherwise
        draw from a fresh stream of (seed, rank, step): a multi-process checkpoint holds rank 0's
        stream only (every rank continuing it would draw the same noise), and a CPU generator's
        state means nothing to a CUDA one (and the reverse)."""
        if saved is not None and self.dist.world_size == 1 and saved.size == self.rng.get_state().numel():
            self.rng.set_state(torch.from_numpy(saved.copy()))
            return
        self.rng.manual_seed(fresh_stream_seed(self.config.train.seed, self.dist.rank, step))
        if saved is not None and self.dist.world_size == 1:
            warnings.warn(f"the checkpoint's random-generator state is not for a {self.device.type} generator; "
                          f"training continues from step {step} with fresh random draws", ResumeWarning, stacklevel=2)
        elif saved is None and others:
            warnings.warn(f"the checkpoint holds another backend's random stream ({', '.join(others)}); "
                          f"training continues from step {step} with fresh random draws", ResumeWarning, stacklevel=2)


def _numpy_state(prefix: str, module: torch.nn.Module) -> dict[str, np.ndarray]:
    return {f"{prefix}.{name}": t.detach().float().cpu().contiguous().numpy() for name, t in module.state_dict().items()}


def load_module(module: torch.nn.Module, checkpoint: Checkpoint, prefix: str) -> None:
    """Load `prefix.*` weights into `module`, refusing another architecture with a one-line error."""
    found = checkpoint.section(prefix)
    expected = {name: tuple(t.shape) for name, t in module.state_dict().items()}
    check_weights_match(checkpoint.path, expected, found, prefix.replace("_", " "))
    device = next(module.parameters()).device
    module.load_state_dict({name: torch.from_numpy(value).to(device) for name, value in found.items()})


def sample_with(
    generator: torch.nn.Module, config: Config, n: int, seed: int, device: torch.device,
    steps: int | None = None, return_trajectory: bool = False, batch_size: int = 1000,
    levels: list[int] | None = None, x_start: np.ndarray | None = None, progress: str | None = None,
):
    """n samples (network units) through the core's chain, optionally with the trajectory.

    By default the chain runs from x_T ~ N(0, I) over `steps` evenly spread levels; `levels` and
    `x_start` (n starting points at levels[0]) run any part of it, e.g. one step from a given x_t.
    `progress` labels a progress bar over the batches (none by default, as inside training).
    """
    batches = sample_batches(generator, config, n, seed, device, steps, return_trajectory, batch_size, levels, x_start,
                             progress)
    return join_batches(batches, return_trajectory)


@torch.no_grad()
def sample_batches(
    generator: torch.nn.Module, config: Config, n: int, seed: int, device: torch.device,
    steps: int | None = None, return_trajectory: bool = False, batch_size: int = 1000,
    levels: list[int] | None = None, x_start: np.ndarray | None = None, progress: str | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """sample_with's draws one batch at a time: (samples, trajectory or None), so a caller can
    keep less than all n in float32 (eval's 50,000 at 256 px would be 39 GB)."""
    schedule = schedule_from_config(config.diffusion)
    levels = chain_levels(schedule.timesteps, steps) if levels is None else levels
    rng = torch.Generator(device=device)
    rng.manual_seed(seed)
    ops = TorchOps(rng)
    shape = item_shape(config)
    for start, m in batch_ranges(n, batch_size, progress):

        def predict_x0(x_t: torch.Tensor, label: int) -> torch.Tensor:
            labels = torch.full((m,), label, dtype=torch.long, device=device)
            return generator(x_t, labels, torch.randn((m, config.generator.nz), generator=rng, device=device))

        if x_start is None:
            x = torch.randn((m, *shape), generator=rng, device=device)
        else:
            x = torch.as_tensor(x_start[start : start + m], dtype=torch.float32, device=device)
        result = sample_chain(predict_x0, x, schedule, ops, levels, return_trajectory)
        x, trajectory = result if return_trajectory else (result, None)
        yield x.float().cpu().numpy(), (torch.stack(trajectory).cpu().numpy() if trajectory is not None else None)
