"""The PyTorch networks: published sizes, FIR resampling, attention and stddev against direct
computations, published initialisation, shapes, conditioning, gradients and state-dict naming."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

from backends.torch_cuda.networks import (  # noqa: E402
    build_discriminator,
    build_generator,
    count_parameters,
    parameter_counts,
)
from backends.torch_cuda.networks.discriminator import minibatch_stddev  # noqa: E402
from backends.torch_cuda.networks.layers import (  # noqa: E402
    AdaptiveGroupNormSiLU,
    FirFilter,
    conv2d,
    sinusoidal_embedding,
)
from backends.torch_cuda.networks.ncsnpp import SelfAttention  # noqa: E402
from ddgan_core.config import Config, apply_overrides, preset  # noqa: E402
from ddgan_core.errors import DDGANError  # noqa: E402
from tests.network_fixtures import wake_near_zero_layers  # noqa: E402

pytestmark = pytest.mark.torch

PUBLISHED_COUNTS = {  # (generator, discriminator), from the reference implementation
    "cifar10": (48_432_515, 12_741_633),
    "celeba256": (39_726_979, 27_737_217),
    "lsun_church256": (39_726_979, 27_737_217),
}


def _tiny(**generator_overrides: object) -> Config:
    cfg = preset("tiny")
    return replace(cfg, generator=replace(cfg.generator, **generator_overrides))


def _inputs(cfg: Config, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = cfg.generator
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, g.channels, g.image_size, g.image_size, generator=gen)
    t = torch.arange(n) % cfg.diffusion.timesteps
    return x, t, torch.randn(n, g.nz, generator=gen)


# --- published sizes -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PUBLISHED_COUNTS))
def test_presets_have_the_published_parameter_counts(name):
    counts = parameter_counts(preset(name))
    assert (counts["generator"], counts["discriminator"]) == PUBLISHED_COUNTS[name]


def test_meta_counts_equal_real_counts_and_tiny_is_well_under_a_million():
    cfg = preset("tiny")
    real = count_parameters(build_generator(cfg)) + count_parameters(build_discriminator(cfg))
    assert sum(parameter_counts(cfg).values()) == real < 1_000_000


# --- FIR resampling against upfirdn2d's definition ------------------------------------------


def _upfirdn2d(x: np.ndarray, up: int, down: int, pad: tuple[int, int], gain: float) -> np.ndarray:
    """Direct upfirdn2d: zero-insert by `up`, zero-pad, convolve with the 2-D FIR kernel, keep every `down`-th."""
    taps = np.array([1.0, 3.0, 3.0, 1.0])
    kernel = np.outer(taps, taps) / taps.sum() ** 2 * gain
    n, c, h, w = x.shape
    upsampled = np.zeros((n, c, h * up, w * up))
    upsampled[:, :, ::up, ::up] = x
    padded = np.pad(upsampled, ((0, 0), (0, 0), pad, pad))
    kh, kw = kernel.shape
    oh, ow = padded.shape[2] - kh + 1, padded.shape[3] - kw + 1
    out = np.zeros((n, c, oh, ow))
    flipped = kernel[::-1, ::-1]
    for i in range(kh):
        for j in range(kw):
            out += flipped[i, j] * padded[:, :, i : i + oh, j : j + ow]
    return out[:, :, ::down, ::down]


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize(
    "op, up, down, pad, gain",
    [("upsample_2x", 2, 1, (2, 1), 4.0), ("downsample_2x", 1, 2, (1, 1), 1.0), ("blur_pad2", 1, 1, (2, 2), 1.0)],
)
def test_fir_resampling_matches_upfirdn2d(op, up, down, pad, gain, channels_last):
    x = torch.randn(2, 3, 6, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    out = getattr(FirFilter(), op)(x.contiguous(memory_format=fmt))
    np.testing.assert_allclose(out.numpy(), _upfirdn2d(x.numpy(), up, down, pad, gain), atol=1e-12)


def test_fir_resampling_keeps_constants_away_from_the_border():
    ones, fir = torch.ones(1, 1, 8, 8), FirFilter()
    np.testing.assert_allclose(fir.upsample_2x(ones)[0, 0, 1:-1, 1:-1].numpy(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(fir.upsample_2x(ones)[0, 0, 0, 1:-1].numpy(), 0.75, rtol=1e-6)  # 3/4: zero beyond the edge
    np.testing.assert_allclose(fir.downsample_2x(ones)[0, 0, 1:-1, 1:-1].numpy(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(fir.downsample_2x(ones)[0, 0, 0, 1:-1].numpy(), 7 / 8, rtol=1e-6)


# --- small building blocks against direct computations -----------------------------------------


def test_sinusoidal_embedding_known_values():
    emb = sinusoidal_embedding(torch.tensor([0, 2]), 8)
    np.testing.assert_allclose(emb[0].numpy(), [0, 0, 0, 0, 1, 1, 1, 1], atol=1e-7)
    freqs = 10_000.0 ** (-np.arange(4) / 3)
    np.testing.assert_allclose(emb[1].numpy(), np.concatenate([np.sin(2 * freqs), np.cos(2 * freqs)]), rtol=1e-5, atol=1e-7)
    assert sinusoidal_embedding(torch.tensor([1]), 7).shape == (1, 7)


@pytest.mark.parametrize("channels_last", [False, True])
def test_self_attention_matches_direct_formula(channels_last):
    torch.manual_seed(0)
    n, c, h, w = 2, 8, 4, 3
    attention = SelfAttention(c)
    wake_near_zero_layers(attention)
    x = torch.randn(n, c, h, w)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    with torch.no_grad():
        got = attention(x.contiguous(memory_format=fmt))
        normed = attention.norm(x).flatten(2)  # (N, C, HW)
        wq, wk, wv = attention.qkv.weight.chunk(3)
        bq, bk, bv = attention.qkv.bias.chunk(3)
        q, k, v = (torch.einsum("oc,ncp->nop", wm, normed) + b[:, None] for wm, b in ((wq, bq), (wk, bk), (wv, bv)))
        weights = torch.softmax(torch.einsum("ncp,ncs->nps", q, k) / math.sqrt(c), dim=-1)
        attended = torch.einsum("nps,ncs->ncp", weights, v)
        out = torch.einsum("oc,ncp->nop", attention.out.weight, attended) + attention.out.bias[:, None]
        expected = (x + out.reshape(n, c, h, w)) / math.sqrt(2)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_adaptive_group_norm_starts_at_scale_one_shift_zero():
    norm = AdaptiveGroupNormSiLU(16, style_dim=5)
    np.testing.assert_array_equal(norm.style.bias.detach().numpy(), [1.0] * 16 + [0.0] * 16)
    with torch.no_grad():
        norm.style.weight.zero_()  # leave only the initial bias: gamma = 1, beta = 0
        x = torch.randn(3, 16, 4, 4)
        torch.testing.assert_close(norm(x, torch.randn(3, 5)), F.silu(F.group_norm(x, 4, eps=1e-6)))


def test_minibatch_stddev_matches_direct_computation():
    h = torch.randn(8, 3, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    out = minibatch_stddev(h)
    assert out.shape == (8, 4, 2, 2)
    torch.testing.assert_close(out[:, :3], h)
    x = h.numpy()
    for i in range(8):  # groups of 4 with StyleGAN2's layout: samples i, i + 2, i + 4, i + 6
        group = x[i % 2 :: 2]
        expected = np.sqrt(group.var(axis=0) + 1e-8).mean()
        np.testing.assert_allclose(out[i, 3].numpy(), expected, rtol=1e-12)
    assert minibatch_stddev(h[:3]).shape == (3, 4, 2, 2)  # a batch not divisible by 4 works


def test_variance_scaling_init_has_the_requested_variance():
    torch.manual_seed(0)
    conv = conv2d(96, 64, 3)  # fan_avg = (96 * 9 + 64 * 9) / 2
    assert conv.weight.var().item() == pytest.approx(1.0 / 720, rel=0.02)
    assert torch.count_nonzero(conv.bias) == 0
    near_zero = conv2d(96, 64, 3, init_scale=0.0, mode="fan_out")
    assert near_zero.weight.var().item() == pytest.approx(1e-10 / (64 * 9), rel=0.02)


# --- the networks ---------------------------------------------------------------------------


def test_near_zero_init_makes_the_first_generator_output_near_zero():
    cfg = preset("tiny")
    torch.manual_seed(0)
    g = build_generator(cfg)
    near_zero = [name for name, p in g.named_parameters() if name.endswith("weight") and p.abs().max() < 1e-4]
    assert "conv_out.weight" in near_zero and "down.0.blocks.0.conv_1.weight" in near_zero
    assert "mid_attention.out.weight" in near_zero
    with torch.no_grad():
        out = g(*_inputs(cfg, 4))
    assert out.abs().max() < 1e-3


@pytest.mark.parametrize("image_size", [16, 32])
def test_tiny_networks_forward_shapes_and_ranges(image_size):
    cfg = _tiny(image_size=image_size)
    torch.manual_seed(0)
    g, d = build_generator(cfg), build_discriminator(cfg)
    wake_near_zero_layers(g)
    x, t, z = _inputs(cfg, 6)
    with torch.no_grad():
        out = g(x, t, z)
        logits = d(x, out, t)
    assert out.shape == x.shape and out.is_contiguous()
    assert out.abs().max() <= 1.0 and out.std() > 1e-2
    assert logits.shape == (6,) and torch.isfinite(logits).all()


def test_generator_conditions_on_step_and_latent_and_keeps_samples_independent():
    cfg = preset("tiny")
    torch.manual_seed(0)
    g = build_generator(cfg).eval()
    wake_near_zero_layers(g)
    x, t, z = _inputs(cfg, 4)
    with torch.no_grad():
        out = g(x, t, z)
        assert (g(x, (t + 1) % 4, z) - out).abs().max() > 1e-3
        assert (g(x, t, torch.roll(z, 1, dims=0)) - out).abs().max() > 1e-3
        torch.testing.assert_close(g(x[2:3], t[2:3], z[2:3]), out[2:3], rtol=1e-4, atol=1e-5)


def test_discriminator_depends_on_step():
    cfg = preset("tiny")
    torch.manual_seed(0)
    d = build_discriminator(cfg)
    wake_near_zero_layers(d)
    x, t, _ = _inputs(cfg, 4)
    with torch.no_grad():
        assert (d(x, x, t) - d(x, x, (t + 1) % 4)).abs().max() > 1e-4


def test_gradients_reach_every_parameter_and_r1_is_differentiable():
    cfg = preset("tiny")
    torch.manual_seed(0)
    g, d = build_generator(cfg), build_discriminator(cfg)
    x, t, z = _inputs(cfg, 4)
    d(x, g(x, t, z), t).sum().backward()
    for module in (g, d):
        silent = [name for name, p in module.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
        assert silent == []
    d.zero_grad()
    x_real = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(d(x_real, x, t).sum(), x_real, create_graph=True)
    grad.pow(2).sum().backward()
    assert d.blocks[0].conv_0.weight.grad.abs().max() > 0


def test_mlp_networks_shapes_and_step_conditioning():
    cfg = preset("toy2d")
    torch.manual_seed(0)
    g, d = build_generator(cfg), build_discriminator(cfg)
    x, z, t = torch.randn(5, 2), torch.randn(5, cfg.generator.nz), torch.tensor([0, 1, 2, 3, 0])
    out = g(x, t, z)
    assert out.shape == (5, 2) and d(x, out, t).shape == (5,)
    assert (g(x, (t + 1) % 4, z) - out).abs().max() > 1e-4
    d(x, out, t).sum().backward()
    assert all(p.grad is not None and torch.any(p.grad != 0) for p in g.parameters())


# --- state-dict naming shared with tinygrad ------------------------------------------------------


def test_state_dict_is_deterministic_parameters_only_float32_contiguous():
    cfg = preset("tiny")
    g1, g2 = build_generator(cfg), build_generator(cfg)
    s1, s2 = g1.state_dict(), g2.state_dict()
    assert list(s1) == list(s2) == [name for name, _ in g1.named_parameters()]
    assert all(v.dtype == torch.float32 and v.is_contiguous() for v in s1.values())
    for name, shape in {
        "z_mapping.0.weight": (32, 16),
        "time_embed.1.weight": (64, 64),
        "conv_in.weight": (16, 3, 3, 3),
        "down.0.blocks.0.norm_0.style.weight": (32, 32),
        "down.0.downsample.skip.weight": (16, 16, 1, 1),
        "down.0.pyramid_downsample.conv.weight": (16, 3, 3, 3),
        "down.1.attentions.0.qkv.weight": (96, 32),
        "mid_attention.out.weight": (32, 32),
        "up.1.blocks.0.conv_0.weight": (32, 64, 3, 3),
        "up.1.upsample.conv_1.weight": (32, 32, 3, 3),
        "conv_out.weight": (3, 16, 3, 3),
    }.items():
        assert tuple(s1[name].shape) == shape, name
    d = build_discriminator(cfg).state_dict()
    assert list(d) == [name for name, _ in build_discriminator(cfg).named_parameters()]
    assert tuple(d["conv_out.weight"].shape) == (64, 65, 3, 3) and "blocks.0.skip.bias" not in d


# --- bad configurations --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "override, message",
    [
        ("generator.kind=unet", "unknown generator kind"),
        ("discriminator.kind=huge", "unknown discriminator kind"),
        ("generator.image_size=15", "not divisible"),
        ("generator.nf=18", "GroupNorm groups"),
        ("generator.ch_mult=()", "ch_mult"),
    ],
)
def test_bad_network_configs_are_one_line_errors(override, message):
    cfg = apply_overrides(preset("tiny"), [override])
    with pytest.raises(DDGANError, match=message) as info:
        build_generator(cfg)
        build_discriminator(cfg)
    assert "\n" not in str(info.value)


def test_generator_dropout_is_active_in_training_only():
    cfg = apply_overrides(preset("tiny"), ["generator.dropout=0.5"])
    torch.manual_seed(0)
    g = wake_near_zero_layers(build_generator(cfg))
    x, t, z = _inputs(cfg, 2)
    with torch.no_grad():
        assert (g.train()(x, t, z) - g(x, t, z)).abs().max() > 1e-3  # fresh masks each call
        torch.testing.assert_close(g.eval()(x, t, z), g(x, t, z), rtol=0, atol=0)
