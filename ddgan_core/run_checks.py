"""One-line refusals of a training configuration, shared by every backend.

`train_session` calls `check_training_config` after the data is loaded (the networks' shapes
come from it) and before a run directory is created, so bad settings leave nothing behind.
"""

from __future__ import annotations

import warnings

from ddgan_core.config import PRECISIONS, SEED_LIMIT, Config, ConfigError, ConfigWarning
from ddgan_core.network_checks import check_discriminator, check_generator, require_positive
from ddgan_core.schedule import schedule_from_config


def check_training_config(config: Config) -> None:
    """Refuse settings no run can train with: the schedule, both networks, and the optimisation."""
    schedule_from_config(config.diffusion)
    check_generator(config)
    check_discriminator(config)
    _warn_unreached_attention(config)
    t = config.train
    require_positive(train_batch_size=t.batch_size, train_iterations=t.iterations, train_lazy_reg=t.lazy_reg,
                     train_log_every=t.log_every, train_sample_every=t.sample_every,
                     train_checkpoint_every=t.checkpoint_every)
    if t.precision not in PRECISIONS:
        raise ConfigError(f"unknown precision '{t.precision}' (known: {', '.join(PRECISIONS)})")
    _require(t.lr_g > 0 and t.lr_d > 0, f"learning rates must be positive, got lr_g {t.lr_g}, lr_d {t.lr_d}")
    _require(t.lr_min >= 0, f"train.lr_min must not be negative, got {t.lr_min}")
    _require(0 <= t.beta1 < 1 and 0 <= t.beta2 < 1, f"Adam's betas must lie in [0, 1), got {t.beta1}, {t.beta2}")
    _require(t.r1_gamma >= 0, f"train.r1_gamma must not be negative, got {t.r1_gamma}")
    _require(0 <= t.ema_decay < 1, f"train.ema_decay must lie in [0, 1), got {t.ema_decay}")
    _require(not t.cosine_lr or t.lr_min <= min(t.lr_g, t.lr_d),
             f"train.lr_min {t.lr_min} exceeds the learning rates (lr_g {t.lr_g}, lr_d {t.lr_d}): the cosine "
             "schedule would raise them")
    _require(0 <= t.seed < SEED_LIMIT, f"train.seed must be an integer from 0 to 2**32 - 1, got {t.seed}")
    _require(config.data.scale > 0, f"data.scale must be positive, got {config.data.scale}")


def _warn_unreached_attention(config: Config) -> None:
    """Attention is placed by resolution; one the U-Net never reaches (7, or 8 in a 32-px net
    with two levels) silently adds nothing, so say so."""
    g = config.generator
    if g.kind != "ncsnpp":
        return
    reached = [g.image_size // 2**level for level in range(len(g.ch_mult))]
    unreached = [r for r in g.attn_resolutions if r not in reached]
    if unreached:
        warnings.warn(
            f"generator.attn_resolutions {', '.join(map(str, unreached))} not among the generator's resolutions "
            f"({', '.join(map(str, reached))}): no attention layers there",
            ConfigWarning, stacklevel=2,
        )


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)
