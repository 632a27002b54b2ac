"""The tinygrad networks are the PyTorch backend's networks: same parameter names and shapes, and the
same outputs (1e-4 relative, float32) on identical weights and inputs."""

import numpy as np
import pytest

pytest.importorskip("tinygrad")
torch = pytest.importorskip("torch")

from tinygrad import Tensor
from tinygrad.nn.state import get_state_dict

from backends.tinygrad.networks import (
    build_discriminator,
    build_generator,
    parameter_counts,
)
from backends.torch_cuda import networks as torch_networks
from ddgan_core.config import ConfigError, apply_overrides, fit_to_data, preset

pytestmark = [pytest.mark.tinygrad, pytest.mark.torch]

RELATIVE = 1e-4


def _shapes(named: dict) -> dict[str, tuple[int, ...]]:
    return {name: tuple(t.shape) for name, t in named.items()}


@pytest.mark.parametrize("name", ["tiny", "cifar10", "celeba256", "toy2d"])
def test_parameter_names_and_shapes_match_the_torch_networks(name):
    config = preset(name)
    with torch.device("meta"):
        torch_g, torch_d = torch_networks.build_generator(config), torch_networks.build_discriminator(config)
    assert _shapes(get_state_dict(build_generator(config))) == _shapes(torch_g.state_dict())
    assert _shapes(get_state_dict(build_discriminator(config))) == _shapes(torch_d.state_dict())
    assert parameter_counts(config) == torch_networks.parameter_counts(config)


def test_published_parameter_counts():
    counts = parameter_counts(preset("cifar10"))
    assert counts["generator"] == 48_432_515  # DESIGN 3: 48.43 M


def test_bad_settings_are_refused_in_one_line():
    with pytest.raises(ConfigError, match="ch_mult"):
        build_generator(apply_overrides(preset("tiny"), ["generator.ch_mult=0"]))
    with pytest.raises(ConfigError, match="unknown discriminator kind"):
        build_discriminator(apply_overrides(preset("tiny"), ["discriminator.kind=huge"]))


def _twin_networks(config, seed: int = 0):
    """Torch networks with weights moved off the near-zero initialisation, and tinygrad copies of them.

    Weights get N(0, 1 / (4 fan_in)) noise (biases N(0, 0.05^2)): every residual path then matters,
    and activations stay of order one however deep the network is.
    """
    torch.manual_seed(seed)
    pair = []
    for build_torch, build_tinygrad in ((torch_networks.build_generator, build_generator),
                                        (torch_networks.build_discriminator, build_discriminator)):
        reference = build_torch(config)
        with torch.no_grad():
            for p in reference.parameters():
                scale = 0.5 / np.sqrt(np.prod(p.shape[1:])) if p.dim() > 1 else 0.05
                p.add_(scale * torch.randn_like(p))
        twin = build_tinygrad(config)
        for name, t in get_state_dict(twin).items():
            t.replace(Tensor(reference.state_dict()[name].numpy()))
        pair.append((reference.eval(), twin))
    return pair


def _inputs(config, n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    g = config.generator
    shape = (n, g.data_dim) if g.kind == "mlp" else (n, g.channels, g.image_size, g.image_size)
    x_prev, x_t = (rng.standard_normal(shape).astype(np.float32) for _ in range(2))
    labels = rng.integers(0, config.diffusion.timesteps, n)
    return x_prev, x_t, labels, rng.standard_normal((n, g.nz)).astype(np.float32)


def _relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


def _assert_forward_parity(config, n: int) -> None:
    (torch_g, g), (torch_d, d) = _twin_networks(config)
    x_prev, x_t, labels, z = _inputs(config, n)
    with torch.no_grad():
        expected_g = torch_g(torch.from_numpy(x_t), torch.from_numpy(labels), torch.from_numpy(z)).numpy()
        expected_d = torch_d(torch.from_numpy(x_prev), torch.from_numpy(x_t), torch.from_numpy(labels)).numpy()
    t = Tensor(labels.astype(np.int32))
    actual_g = g(Tensor(x_t), t, Tensor(z)).numpy()
    actual_d = d(Tensor(x_prev), Tensor(x_t), t).numpy()
    assert actual_g.shape == expected_g.shape and actual_d.shape == expected_d.shape == (n,)
    assert np.abs(expected_g).max() > 0.1 and np.abs(expected_d).max() > 0.1  # non-trivial outputs
    assert _relative_error(actual_g, expected_g) < RELATIVE
    assert _relative_error(actual_d, expected_d) < RELATIVE


def test_mlp_networks_match_torch():
    _assert_forward_parity(fit_to_data(preset("toy2d"), (2,)), n=16)


def test_tiny_networks_match_torch():
    _assert_forward_parity(preset("tiny"), n=4)


def test_cifar10_networks_match_torch():  # the published 48 M + 12.7 M parameter networks, batch 1 (~30 s)
    _assert_forward_parity(preset("cifar10"), n=1)


def test_minibatch_stddev_groups_samples_as_stylegan2_does():
    from backends.tinygrad.networks.discriminator import minibatch_stddev

    h = np.random.default_rng(2).standard_normal((8, 3, 2, 2)).astype(np.float32)
    out = minibatch_stddev(Tensor(h)).numpy()
    assert out.shape == (8, 4, 2, 2)
    np.testing.assert_array_equal(out[:, :3], h)
    for i in range(8):  # groups of 4: samples i, i + 2, i + 4, i + 6
        group = h[i % 2 :: 2].astype(np.float64)
        np.testing.assert_allclose(out[i, 3], np.sqrt(group.var(axis=0) + 1e-8).mean(), rtol=1e-5)
