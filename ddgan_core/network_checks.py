"""One-line refusals of network settings that cannot be built or run, shared by every backend."""

from __future__ import annotations

from ddgan_core.config import Config, ConfigError

GENERATOR_KINDS = ("ncsnpp", "mlp")
DISCRIMINATOR_KINDS = ("small", "large", "mlp")


def check_generator(cfg: Config) -> None:
    """Refuse a generator kind or setting no backend can build, in one line."""
    g = cfg.generator
    if g.kind == "ncsnpp":
        check_ncsnpp(cfg)
    elif g.kind == "mlp":
        require_positive(generator_data_dim=g.data_dim, generator_nz=g.nz, generator_hidden=g.hidden, generator_layers=g.layers)
    else:
        raise ConfigError(f"unknown generator kind '{g.kind}' (known: {', '.join(GENERATOR_KINDS)})")


def check_discriminator(cfg: Config) -> None:
    """Refuse a discriminator kind or setting no backend can build, in one line."""
    d = cfg.discriminator
    if d.kind not in DISCRIMINATOR_KINDS:
        raise ConfigError(f"unknown discriminator kind '{d.kind}' (known: {', '.join(DISCRIMINATOR_KINDS)})")
    if d.t_emb_dim < 4:
        raise ConfigError(f"discriminator.t_emb_dim must be at least 4, got {d.t_emb_dim}")
    if d.kind == "mlp":
        require_positive(discriminator_hidden=d.hidden, discriminator_layers=d.layers, generator_data_dim=cfg.generator.data_dim)
    else:
        require_positive(discriminator_ngf=d.ngf, generator_channels=cfg.generator.channels)


def require_positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ConfigError(f"{name.replace('_', '.', 1)} must be positive, got {value}")


def check_ncsnpp(cfg: Config) -> None:
    """Refuse NCSN++ settings the network cannot be built or run with, in one line."""
    g = cfg.generator
    require_positive(
        generator_channels=g.channels, generator_nf=g.nf, generator_num_res_blocks=g.num_res_blocks,
        generator_nz=g.nz, generator_z_emb_dim=g.z_emb_dim, generator_image_size=g.image_size,
    )
    if not g.ch_mult or min(g.ch_mult) < 1:
        raise ConfigError(f"generator.ch_mult must be positive integers, got {g.ch_mult}")
    if g.n_mlp < 0:
        raise ConfigError(f"generator.n_mlp must not be negative, got {g.n_mlp}")
    if not 0.0 <= g.dropout < 1.0:
        raise ConfigError(f"generator.dropout must be in [0, 1), got {g.dropout}")
    factor = 2 ** (len(g.ch_mult) - 1)
    if g.image_size % factor:
        raise ConfigError(f"generator.image_size {g.image_size} is not divisible by 2^(len(ch_mult) - 1) = {factor}")
    widths = {g.nf} | {g.nf * m for m in g.ch_mult}
    concatenated = {a + b for a in widths for b in widths}  # decoder blocks read [h, skip]
    for channels in sorted(widths | concatenated):
        groups = min(channels // 4, 32)
        if groups < 1 or channels % groups:
            raise ConfigError(
                f"generator: {channels} channels cannot be split into min(channels // 4, 32) GroupNorm groups; "
                "choose nf and ch_mult so every width is a multiple of 4 (of 32 above 128)"
            )
