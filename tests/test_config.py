"""Configuration objects, presets and key=value overrides."""

import pytest

from ddgan_core.config import PRESETS, Config, ConfigError, apply_overrides, preset


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_json(name):
    config = preset(name)
    assert Config.from_json(config.to_json()) == config


def test_published_hyperparameters():
    c = preset("cifar10")
    assert (c.diffusion.timesteps, c.train.batch_size, c.train.lr_d, c.train.lr_g) == (4, 256, 1.25e-4, 1.6e-4)
    assert (c.train.r1_gamma, c.train.lazy_reg, c.train.ema_decay, c.generator.n_mlp) == (0.02, 15, 0.9999, 4)
    h = preset("celeba256")
    assert (h.diffusion.timesteps, h.train.r1_gamma, h.train.lazy_reg, h.train.lr_d, h.train.lr_g) == (2, 2.0, 10, 1e-4, 2e-4)
    church = preset("lsun_church256")
    assert (church.diffusion.timesteps, church.train.r1_gamma, church.train.lr_g, church.train.ema_decay) == (4, 1.0, 1.6e-4, 0.999)


def test_overrides_with_and_without_sections():
    c = apply_overrides(preset("cifar10"), ["train.lr_g=2e-4", "timesteps=2", "ch_mult=1,2", "random_flip=false"])
    assert (c.train.lr_g, c.diffusion.timesteps, c.generator.ch_mult, c.data.random_flip) == (2e-4, 2, (1, 2), False)
    assert preset("cifar10").train.lr_g == 1.6e-4  # presets are frozen, overrides make copies


@pytest.mark.parametrize(
    "item, message",
    [
        ("nonsense=1", "unknown config key 'nonsense'"),
        ("train.nonsense=1", "unknown config key 'train.nonsense'"),
        ("model.nf=1", "unknown config section 'model'"),
        ("timesteps=four", "expected int"),
        ("timesteps=2.5", "expected int"),
        ("lr_g=fast", "expected float"),
        ("random_flip=maybe", "expected bool"),
        ("hidden=3", "ambiguous config key 'hidden'"),
        ("no_equals_sign", "key=value"),
    ],
)
def test_bad_overrides_get_one_line_errors(item, message):
    with pytest.raises(ConfigError, match=message) as info:
        apply_overrides(preset("tiny"), [item])
    assert "\n" not in str(info.value)


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ConfigError, match="known: cifar10"):
        preset("imagenet")
