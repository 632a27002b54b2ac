"""The discriminator's gradients at R1 steps, written as nested torch.func transforms.

At an R1 step D minimises discriminator_loss + r1_penalty, and the penalty holds grad_x D(x_k),
so its gradient with respect to D's weights needs a second derivative. Autograd gets it by a
double backward (`autograd.grad(..., create_graph=True)`), which a module compiled through
AOTAutograd cannot run. Here the same quantity is `torch.func.grad` (weights) of a function that
takes `torch.func.grad` (x_k) itself: one pure function of the weights and the batch, which runs
eagerly or which torch.compile traces whole, R1 included, into one graph. Its gradients equal the
double backward's (tests/test_torch_r1_gradients.py); the loss and the penalty are ddgan_core's.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call, grad

from ddgan_core import losses
from ddgan_core.ops import ArrayOps

Weights = dict[str, torch.Tensor]
# (weights, x_k, x_next, x_fake, label) -> (gradients by weight name, (loss_d, r1))
R1StepGradients = Callable[..., tuple[Weights, tuple[torch.Tensor, torch.Tensor]]]


def r1_step_gradients(discriminator: nn.Module, gamma: float, ops: ArrayOps, autocast: bool) -> R1StepGradients:
    """The gradients of discriminator_loss(D(x_k), D(x_fake)) + r1_penalty(grad_x_k D(x_k)) with
    respect to D's weights, and the two terms; D runs under bf16 autocast when `autocast`."""
    buffers = dict(discriminator.named_buffers())

    def logits(weights: Weights, x_prev: torch.Tensor, x_next: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x_prev.device.type, dtype=torch.bfloat16, enabled=autocast):
            return functional_call(discriminator, (weights, buffers), (x_prev, x_next, label)).float()

    def loss(weights: Weights, x_k: torch.Tensor, x_next: torch.Tensor, x_fake: torch.Tensor, label: torch.Tensor):
        def real_logits_sum(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            real = logits(weights, x, x_next, label)
            return real.sum(), real

        grad_real, real = grad(real_logits_sum, has_aux=True)(x_k)  # one forward pass on real data for both terms
        loss_d = losses.discriminator_loss(real, logits(weights, x_fake, x_next, label), ops)
        r1 = losses.r1_penalty(grad_real, gamma, ops)
        return loss_d + r1, (loss_d.detach(), r1.detach())

    return grad(loss, has_aux=True)


def set_gradients(module: nn.Module, gradients: Weights) -> None:
    """Hand `gradients` to the module's weights as .grad, laid out like each weight (as autograd
    does), so fused Adam and the data-parallel all-reduce see what a backward pass leaves."""
    for name, weight in module.named_parameters():
        g = gradients[name]
        weight.grad = g if g.stride() == weight.stride() else torch.empty_like(weight).copy_(g)
