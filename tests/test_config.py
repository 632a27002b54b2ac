"""Configuration objects, presets and key=value overrides."""

import warnings

import pytest

from ddgan_core.config import PRESETS, Config, ConfigError, ConfigWarning, apply_overrides, preset
from ddgan_core.errors import DDGANError
from ddgan_core.run_checks import check_training_config


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


def test_preset_lengths_are_the_published_epochs_over_the_reference_codes_training_sets():
    # epochs x training images / global batch: CIFAR-10 1,800 x 50,000 / 256, CelebA-HQ 800 x
    # 27,000 / 32 (its train split), LSUN Church 500 x 120,000 / 64 (the subset the reference trains on)
    lengths = {name: (preset(name).train.iterations, preset(name).train.batch_size)
               for name in ("cifar10", "celeba256", "lsun_church256")}
    assert lengths == {"cifar10": (351_562, 256), "celeba256": (675_000, 32), "lsun_church256": (937_500, 64)}


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


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_passes_the_training_checks(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and none of them places attention where its U-Net never is
        check_training_config(preset(name))


def test_attention_at_a_resolution_the_unet_never_reaches_is_warned_of():
    tiny = preset("tiny")  # 16 px, levels at 16 and 8
    with pytest.warns(ConfigWarning, match=r"attn_resolutions 7 not among the generator's resolutions \(16, 8\)"):
        check_training_config(apply_overrides(tiny, ["attn_resolutions=7,8"]))
    with pytest.warns(ConfigWarning, match=r"attn_resolutions 8 not among .* \(32, 16\)"):
        check_training_config(apply_overrides(tiny, ["generator.image_size=32"]))


@pytest.mark.parametrize(
    "override, message",
    [
        ("iterations=-5", "train.iterations must be positive, got -5"),
        ("batch_size=0", "train.batch_size must be positive, got 0"),
        ("lazy_reg=0", "train.lazy_reg must be positive"),
        ("checkpoint_every=0", "train.checkpoint_every must be positive"),
        ("precision=fp16", "unknown precision 'fp16' (known: fp32, bf16)"),
        ("lr_d=0", "learning rates must be positive"),
        ("lr_min=-1e-5", "train.lr_min must not be negative"),
        ("beta2=1", "Adam's betas must lie in [0, 1)"),
        ("r1_gamma=-0.1", "train.r1_gamma must not be negative"),
        ("ema_decay=1", "train.ema_decay must lie in [0, 1)"),
        ("train.seed=-1", "train.seed must be an integer from 0 to 2**32 - 1, got -1"),
        ("train.seed=4294967296", "train.seed must be an integer from 0 to 2**32 - 1, got 4294967296"),
        ("lr_min=0.01", "train.lr_min 0.01 exceeds the learning rates (lr_g 0.001, lr_d 0.002)"),
        ("data.scale=0", "data.scale must be positive"),
        ("diffusion.timesteps=0", "timesteps must be an integer from 1 to 1000"),
        ("diffusion.timesteps=1001", "timesteps must be an integer from 1 to 1000"),
        ("diffusion.beta_max=nan", "beta_max must be a finite number"),
        ("generator.nz=0", "generator.nz must be positive"),
    ],
)
def test_training_settings_no_run_can_use_are_refused_in_one_line(override, message):
    with pytest.raises(DDGANError) as refused:  # ConfigError, or the schedule's ScheduleError
        check_training_config(apply_overrides(preset("toy2d"), [override]))
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_a_network_of_the_wrong_family_is_named_for_the_data_and_an_unknown_kind_as_unknown():
    from ddgan_core.config import fit_to_data

    with pytest.raises(ConfigError, match="dataset 'cifar10' holds points: use the toy2d preset"):
        fit_to_data(preset("tiny"), (2,))
    with pytest.raises(ConfigError, match="holds images: use an image preset"):
        fit_to_data(preset("toy2d"), (3, 32, 32))
    misnamed = fit_to_data(apply_overrides(preset("toy2d"), ["generator.kind=foo"]), (2,))
    with pytest.raises(ConfigError, match=r"^unknown generator kind 'foo' \(known: ncsnpp, mlp\)$"):
        check_training_config(misnamed)
