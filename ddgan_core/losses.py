"""Loss and optimisation rules of DDGAN training (DESIGN 2.4), over backend arrays.

Non-saturating GAN losses in softplus form (stable at any logit), the R1 penalty on real data,
the lazy-regularisation schedule, the EMA rule and the cosine learning-rate rule.
"""

from __future__ import annotations

import math

from ddgan_core.ops import A, ArrayOps


def discriminator_loss(real_logits: A, fake_logits: A, ops: ArrayOps[A]) -> A:
    """mean softplus(-D(real)) + mean softplus(D(fake)) = -log sigmoid(D_real) - log(1 - sigmoid(D_fake))."""
    return ops.mean(ops.softplus(-real_logits)) + ops.mean(ops.softplus(fake_logits))


def generator_loss(fake_logits: A, ops: ArrayOps[A]) -> A:
    """Non-saturating generator loss: mean softplus(-D(fake)) = -log sigmoid(D_fake)."""
    return ops.mean(ops.softplus(-fake_logits))


def r1_penalty(grad_real: A, gamma: float, ops: ArrayOps[A]) -> A:
    """(gamma / 2) * mean over the batch of ||grad_{x_k} sum D(x_k, x_{k+1}, k)||^2 on real x_k.

    As in the reference code, the penalty is not rescaled by the lazy interval, so published
    gamma values transfer unchanged.
    """
    return (gamma / 2.0) * ops.mean(ops.sum_per_sample(grad_real * grad_real))


def r1_due(step: int, lazy_reg: int) -> bool:
    """Whether the R1 penalty is applied at this (0-based) discriminator step: every `lazy_reg` steps."""
    return lazy_reg <= 1 or step % lazy_reg == 0


def ema_weight(decay: float) -> float:
    """Interpolation weight of the EMA rule ema <- ema + (1 - decay)(param - ema), i.e. lerp(ema, param, w)."""
    return 1.0 - decay


def ema_update(ema: A, param: A, decay: float) -> A:
    """The EMA rule applied to one array: decay * ema + (1 - decay) * param."""
    return ema + ema_weight(decay) * (param - ema)


def cosine_lr(step: int, total_steps: int, lr_max: float, lr_min: float) -> float:
    """Cosine decay from lr_max at step 0 to lr_min at total_steps (held there afterwards)."""
    progress = min(max(step, 0), total_steps) / max(total_steps, 1)
    return lr_min + 0.5 * (lr_max - lr_min) * (1.0 + math.cos(math.pi * progress))
