"""The R1 step as nested torch.func transforms (backends/torch_cuda/r1_gradients.py) against
autograd's double backward, which is how the penalty's gradient is usually taken."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from backends.torch_cuda.networks import build_discriminator  # noqa: E402
from backends.torch_cuda.ops import TorchOps  # noqa: E402
from backends.torch_cuda.r1_gradients import r1_step_gradients, set_gradients  # noqa: E402
from ddgan_core import losses  # noqa: E402
from ddgan_core.config import preset  # noqa: E402
from tests.network_fixtures import wake_near_zero_layers  # noqa: E402

GAMMA = 0.05


def visible_discriminator(channels_last: bool) -> torch.nn.Module:
    """The tiny preset's D with its near-zero layers and zero biases re-drawn, so every term of the
    R1 gradient is far from zero (at the published initialisation the penalty is about 1e-15)."""
    torch.manual_seed(0)
    discriminator = wake_near_zero_layers(build_discriminator(preset("tiny")), bias_scale=0.1)
    return discriminator.to(memory_format=torch.channels_last) if channels_last else discriminator


def double_backward(discriminator, x_k, x_next, x_fake, label, ops):
    """The D step's loss + R1 differentiated the usual way: autograd.grad(create_graph=True)."""
    x_k = x_k.clone().requires_grad_(True)
    real = discriminator(x_k, x_next, label)
    loss_d = losses.discriminator_loss(real, discriminator(x_fake, x_next, label), ops)
    (grad_real,) = torch.autograd.grad(real.sum(), x_k, create_graph=True)
    r1 = losses.r1_penalty(grad_real, GAMMA, ops)
    gradients = torch.autograd.grad(loss_d + r1, list(discriminator.parameters()))
    return dict(zip((name for name, _ in discriminator.named_parameters()), gradients)), loss_d, r1


@pytest.mark.parametrize("channels_last", [False, True])
def test_r1_step_gradients_equal_the_double_backward(channels_last):
    discriminator, ops = visible_discriminator(channels_last), TorchOps(torch.Generator())
    rng = torch.Generator().manual_seed(1)
    x_k, x_next, x_fake = (torch.randn(4, 3, 16, 16, generator=rng) for _ in range(3))
    label = torch.randint(0, 4, (4,), generator=rng)
    expected, loss_d, r1 = double_backward(discriminator, x_k, x_next, x_fake, label, ops)
    assert r1.item() > 1e-6 and all(g.abs().max() > 0 for g in expected.values())
    weights = {name: w.detach() for name, w in discriminator.named_parameters()}
    gradients, (got_loss_d, got_r1) = r1_step_gradients(discriminator, GAMMA, ops, autocast=False)(
        weights, x_k, x_next, x_fake, label)
    assert got_loss_d.item() == pytest.approx(loss_d.item(), rel=1e-6)
    assert got_r1.item() == pytest.approx(r1.item(), rel=1e-6)
    set_gradients(discriminator, gradients)
    for name, weight in discriminator.named_parameters():
        np.testing.assert_allclose(weight.grad.numpy(), expected[name].numpy(), rtol=1e-5, atol=1e-7 * expected[name].abs().max().item())
        assert weight.grad.stride() == weight.stride(), name  # laid out as a backward pass would
