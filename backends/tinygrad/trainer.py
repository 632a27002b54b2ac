"""The DDGAN training step in tinygrad (DESIGN 2.4): one D update, then one G update, as one TinyJit.

Every coefficient, forward draw and loss comes from ddgan_core, exactly as in the PyTorch backend
(backends/torch_cuda/trainer.py); this file supplies the networks, autograd (R1 by `gradient()`
double backward), Adam, the EMA copy and the compiled step.

Compilation: a whole training step (D update, G update, EMA) is captured in one TinyJit, so a
steady step replays compiled kernels with no Python-side scheduling. Python branches freeze at
capture, so a step with the R1 penalty and one without are two captures; shapes are fixed per run
(the batch stream yields full batches), and learning rates and random draws are inputs of the
jitted step, not constants baked into it.

Random draws: every label, noise and latent of a step comes from `draws(n)`, by default a numpy
Generator seeded from the configuration (its state goes into checkpoints). Replacing `draws`
injects given arrays (the parity test feeds both backends the same ones) without changing the step.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from tinygrad import Context, Tensor, TinyJit
from tinygrad.nn.optim import Adam
from tinygrad.nn.state import get_state_dict

from backends.tinygrad import program_cache
from backends.tinygrad.networks import build_discriminator, build_generator
from backends.tinygrad.ops import QueuedNoise, TinygradOps, labels_tensor
from backends.tinygrad.sampling import Sampler
from ddgan_core import losses
from ddgan_core.checkpoint import (
    DISCRIMINATOR,
    GENERATOR,
    GENERATOR_EMA,
    Checkpoint,
    ResumeWarning,
    check_weights_match,
    fresh_stream_seed,
    other_random_streams,
)
from ddgan_core.config import Config, item_shape
from ddgan_core.diffusion import DiffusionProcess
from ddgan_core.schedule import schedule_from_config

RNG_KEY = "rng.numpy_pcg64"


@dataclasses.dataclass(frozen=True)
class PhaseDraws:
    """The random draws of one half of a training step (the D update or the G update)."""

    labels: np.ndarray  # (N,) step labels k, uniform in [0, T)
    noise_k: np.ndarray  # x_k = sqrt(abar_k) x_0 + sqrt(1 - abar_k) noise_k
    noise_next: np.ndarray  # x_{k+1} = sqrt(alpha_{k+1}) x_k + sqrt(beta_{k+1}) noise_next
    latent: np.ndarray  # z (N, nz) of the generator
    noise_post: np.ndarray  # x_k' = posterior mean + posterior std * noise_post


@dataclasses.dataclass(frozen=True)
class StepDraws:
    discriminator: PhaseDraws
    generator: PhaseDraws


def draw_phase(rng: np.random.Generator, n: int, shape: tuple[int, ...], timesteps: int, nz: int) -> PhaseDraws:
    """One phase's draws from `rng`, in the order the PyTorch step draws them."""
    labels = rng.integers(0, timesteps, n)
    noise_k, noise_next = (rng.standard_normal((n, *shape), dtype=np.float32) for _ in range(2))
    latent = rng.standard_normal((n, nz), dtype=np.float32)
    return PhaseDraws(labels, noise_k, noise_next, latent, rng.standard_normal((n, *shape), dtype=np.float32))


class TinygradTrainer:
    """Networks, optimisers and the compiled step of one DDGAN run on one tinygrad device."""

    def __init__(self, config: Config, device: str) -> None:
        self.config, self.device = config, device
        train = config.train
        program_cache.restore()
        Tensor.manual_seed(train.seed)
        with Context(DEV=device):
            self.generator = build_generator(config)
            self.discriminator = build_discriminator(config)
            self.generator_ema = build_generator(config)
        self.g_params, self.d_params, ema = (list(get_state_dict(m).values()) for m in (self.generator, self.discriminator, self.generator_ema))
        Tensor.realize(*self.g_params, *self.d_params)
        for e, p in zip(ema, self.g_params):
            e.replace(p.clone())
        self.ema_params = ema
        self.opt_g = Adam(self.g_params, lr=train.lr_g, b1=train.beta1, b2=train.beta2)
        self.opt_d = Adam(self.d_params, lr=train.lr_d, b1=train.beta1, b2=train.beta2)
        optimizer_state = [t for opt in (self.opt_g, self.opt_d) for t in (*opt.m, *opt.v, opt.b1_t, opt.b2_t, opt.lr)]
        Tensor.realize(*self.ema_params, *optimizer_state)  # every buffer the jitted step updates exists before capture
        self._steps_taken = 0
        self.rng = np.random.default_rng(train.seed * 1_000_003)
        self.schedule = schedule_from_config(config.diffusion)
        self.ops = TinygradOps(QueuedNoise(()))
        self.process = DiffusionProcess(self.schedule, self.ops)
        self.draws: Callable[[int], StepDraws] = self._draw
        self.sampler = Sampler(self.generator_ema, config, device)
        self._lr = {"g": train.lr_g, "d": train.lr_d}
        self._step_with_r1 = TinyJit(lambda *inputs: self._step(True, *inputs))
        self._step_without_r1 = TinyJit(lambda *inputs: self._step(False, *inputs))
        self._last_r1 = Tensor.zeros(1, device=device).contiguous().realize()

    def _draw(self, n: int) -> StepDraws:
        shape, timesteps, nz = item_shape(self.config), self.schedule.timesteps, self.config.generator.nz
        return StepDraws(*(draw_phase(self.rng, n, shape, timesteps, nz) for _ in range(2)))

    # --- the step -------------------------------------------------------------------------
    def set_learning_rates(self, lr_g: float, lr_d: float) -> None:
        self._lr = {"g": lr_g, "d": lr_d}

    def train_step(self, batch: np.ndarray, step: int) -> dict[str, Any]:
        train = self.config.train
        draws = self.draws(len(batch))
        inputs = [Tensor(np.ascontiguousarray(batch, dtype=np.float32), device=self.device),
                  Tensor([self._lr["g"]], device=self.device), Tensor([self._lr["d"]], device=self.device)]
        for phase in (draws.discriminator, draws.generator):
            inputs += [labels_tensor(phase.labels, self.device)]
            inputs += [Tensor(np.asarray(a, dtype=np.float32), device=self.device) for a in (phase.noise_k, phase.noise_next, phase.latent, phase.noise_post)]
        with_r1 = train.r1_gamma > 0 and losses.r1_due(step, train.lazy_reg)
        with Context(TRAINING=1):
            if with_r1:
                loss_d, self._last_r1, loss_g = self._step_with_r1(*inputs)
            else:
                loss_d, loss_g = self._step_without_r1(*inputs)
        self._steps_taken += 1
        program_cache.persist()  # stores the kernels a step's first calls generated; free otherwise
        return {"loss_d": loss_d, "loss_g": loss_g, "r1": self._last_r1}

    def _step(self, with_r1: bool, x0: Tensor, lr_g: Tensor, lr_d: Tensor, *draws: Tensor) -> tuple[Tensor, ...]:
        """The whole step on tensors (traced once per R1 variant by TinyJit): D update, G update, EMA."""
        train = self.config.train
        d_labels, d_noise_k, d_noise_next, d_latent, d_noise_post = draws[:5]
        g_labels, g_noise_k, g_noise_next, g_latent, g_noise_post = draws[5:]
        # D step: real pairs against detached fakes, R1 on real x_k.
        self.ops.noise = QueuedNoise([d_noise_k, d_noise_next, d_noise_post])
        x_k, x_next = self.process.real_pair(x0, d_labels)
        x_next = x_next.detach()  # R1 differentiates D in its x_k input only, not through x_{k+1}(x_k)
        real_logits = self.discriminator(x_k, x_next, d_labels)
        x_fake = self.process.posterior_sample(self.generator(x_next, d_labels, d_latent).detach(), x_next, d_labels)
        loss_d = losses.discriminator_loss(real_logits, self.discriminator(x_fake, x_next, d_labels), self.ops)
        total_d, outputs = loss_d, [loss_d]
        if with_r1:
            (grad,) = real_logits.sum().gradient(x_k)
            r1 = losses.r1_penalty(grad, train.r1_gamma, self.ops)
            total_d, outputs = loss_d + r1, [loss_d, r1]
        _adam_step(self.opt_d, self.d_params, total_d, lr_d, outputs)
        # G step: a fresh label, pair and latent against the updated D.
        self.ops.noise = QueuedNoise([g_noise_k, g_noise_next, g_noise_post])
        _, x_next = self.process.real_pair(x0, g_labels)
        x_fake = self.process.posterior_sample(self.generator(x_next, g_labels, g_latent), x_next, g_labels)
        loss_g = losses.generator_loss(self.discriminator(x_fake, x_next, g_labels), self.ops)
        _adam_step(self.opt_g, self.g_params, loss_g, lr_g, [loss_g])
        Tensor.realize(*[e.assign(losses.ema_update(e, p, train.ema_decay)) for e, p in zip(self.ema_params, self.g_params)])
        return (*outputs, loss_g)

    def read_scalars(self, values: dict[str, Any]) -> dict[str, float]:
        return {k: float(v.numpy().reshape(-1)[0]) for k, v in values.items()}

    # --- sampling ---------------------------------------------------------------------------
    def sample(self, n: int, seed: int) -> np.ndarray:
        return self.sampler.sample(n, seed)

    # --- checkpoint state --------------------------------------------------------------------
    def optimizer_step(self) -> int:
        return self._steps_taken

    def _modules(self) -> tuple[tuple[str, Any], ...]:
        return ((GENERATOR, self.generator), (GENERATOR_EMA, self.generator_ema), (DISCRIMINATOR, self.discriminator))

    def _optimizers(self) -> tuple[tuple[str, Adam, Any], ...]:
        return (("optimizer_g", self.opt_g, self.generator), ("optimizer_d", self.opt_d, self.discriminator))

    def state(self) -> dict[str, np.ndarray]:
        tensors = {}
        for prefix, module in self._modules():
            tensors.update({f"{prefix}.{name}": t.numpy() for name, t in get_state_dict(module).items()})
        if self._steps_taken:
            for prefix, opt, module in self._optimizers():
                for name, m, v in zip(get_state_dict(module), opt.m, opt.v):
                    tensors[f"{prefix}.exp_avg.{name}"] = m.numpy()
                    tensors[f"{prefix}.exp_avg_sq.{name}"] = v.numpy()
        tensors[RNG_KEY] = np.frombuffer(json.dumps(self.rng.bit_generator.state).encode(), dtype=np.uint8).copy()
        return tensors

    def load_state(self, checkpoint: Checkpoint) -> None:
        """Restore networks, Adam moments (beta powers from the shared step count) and the random generator."""
        for prefix, module in self._modules():
            load_module(module, checkpoint, prefix)
        step = int(checkpoint.extra.get("optimizer_step", 0))
        updates = []
        for prefix, opt, module in self._optimizers():
            for name, m, v in zip(get_state_dict(module), opt.m, opt.v):
                key = f"{prefix}.exp_avg.{name}"
                if key in checkpoint.tensors:
                    updates += [m.assign(Tensor(checkpoint.tensors[key], device=m.device)),
                                v.assign(Tensor(checkpoint.tensors[f"{prefix}.exp_avg_sq.{name}"], device=v.device))]
            updates += [opt.b1_t.assign(Tensor([opt.b1 ** step], device=opt.b1_t.device)),
                        opt.b2_t.assign(Tensor([opt.b2 ** step], device=opt.b2_t.device))]
        Tensor.realize(*updates)
        self._steps_taken = step
        if RNG_KEY in checkpoint.tensors:
            self.rng.bit_generator.state = json.loads(checkpoint.tensors[RNG_KEY].tobytes().decode())
            return
        # Not this backend's checkpoint: a fresh stream of (seed, step), never a replay of step 0's draws.
        fresh = np.random.PCG64(fresh_stream_seed(self.config.train.seed, 0, checkpoint.step))
        self.rng.bit_generator.state = fresh.state
        others = other_random_streams(checkpoint, RNG_KEY)
        if others:
            warnings.warn(f"the checkpoint holds another backend's random stream ({', '.join(others)}); "
                          f"training continues from step {checkpoint.step} with fresh random draws",
                          ResumeWarning, stacklevel=2)


def _adam_step(opt: Adam, params: list[Tensor], loss: Tensor, lr: Tensor, outputs: list[Tensor]) -> None:
    """One Adam update of `params` on `loss` at learning rate `lr` (a (1,) tensor), realising `outputs`.

    The forward values (`outputs`, which include the loss) are realised before the gradients, once
    the gradient graph exists: the backward graph then reads the stored forward values, and
    tinygrad schedules two smaller graphs, which costs less than one graph of both.
    """
    for p, g in zip(params, loss.gradient(*params)):
        p.grad = g
    opt.lr.assign(lr)
    Tensor.realize(*outputs)
    Tensor.realize(*opt.schedule_step())
    opt.zero_grad()


def load_module(module: Any, checkpoint: Checkpoint, prefix: str) -> None:
    """Load `prefix.*` weights into `module`, refusing another architecture with a one-line error.

    Realised weights are overwritten in their buffers, so compiled steps and samplers that read
    them see the loaded values; weights never realised (a freshly built network) are replaced
    without computing their random initial values.
    """
    found = checkpoint.section(prefix)
    params = get_state_dict(module)
    check_weights_match(checkpoint.path, {name: tuple(t.shape) for name, t in params.items()}, found, prefix.replace("_", " "))
    for name, t in params.items():
        value = Tensor(np.ascontiguousarray(found[name], dtype=np.float32), device=t.device)
        t.assign(value) if t.uop.is_realized else t.replace(value)
    Tensor.realize(*params.values())
