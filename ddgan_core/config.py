"""Typed, frozen configuration objects, the published presets, and `key=value` overrides.

A `Config` is the single description of a run: data, diffusion schedule, both networks and
the optimisation. It is written to `config.json` in every run directory and stored in every
checkpoint's metadata, so a run can be rebuilt from it alone (DESIGN 6).
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field, fields, replace
from typing import Any

from ddgan_core.errors import DDGANError


class ConfigError(DDGANError, ValueError):
    """A configuration value or override that cannot be accepted (one-line message)."""


class ConfigWarning(UserWarning):
    """A setting that is accepted but has no effect, most likely not what was meant."""


@dataclass(frozen=True)
class DataConfig:
    """Which data to train on. `scale` maps point data to network units (x_net = x / scale)."""

    dataset: str = "grid25"
    data_dir: str = "./data"
    resolution: int = 32
    random_flip: bool = True
    scale: float = 1.0


@dataclass(frozen=True)
class DiffusionConfig:
    """The discretised VP SDE of DESIGN 2.1."""

    timesteps: int = 4
    beta_min: float = 0.1
    beta_max: float = 20.0
    schedule: str = "vp"  # "vp" or "geometric"


@dataclass(frozen=True)
class GeneratorConfig:
    """Generator G(x_t, z, t) -> x0. `kind` is "ncsnpp" (images) or "mlp" (point data)."""

    kind: str = "ncsnpp"
    image_size: int = 32
    channels: int = 3
    nf: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 2, 2)
    num_res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = (16,)
    dropout: float = 0.0
    nz: int = 100
    z_emb_dim: int = 256
    n_mlp: int = 4
    # point data (kind == "mlp"): data dimension, hidden width and depth, and the number of
    # positional-encoding frequencies of the input coordinates (0: the plain MLP)
    data_dim: int = 2
    hidden: int = 512
    layers: int = 3
    input_frequencies: int = 0


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Time-dependent D(x_{t-1}, x_t, t). `kind` is "small" (32x32), "large" (256x256) or "mlp"."""

    kind: str = "small"
    ngf: int = 64
    t_emb_dim: int = 256
    hidden: int = 512
    layers: int = 3
    input_frequencies: int = 0


PRECISIONS = ("fp32", "bf16")  # of training: fp32, or bf16 autocast over fp32 weights (CUDA)
SEED_LIMIT = 2**32  # seeds are 0 <= seed < 2**32 (numpy's classic range): every generator a backend seeds from one accepts it


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation of DESIGN 2.4. `batch_size` is the global batch over all processes."""

    batch_size: int = 256
    iterations: int = 400_000
    lr_g: float = 1.6e-4
    lr_d: float = 1.25e-4
    lr_min: float = 1e-5
    beta1: float = 0.5
    beta2: float = 0.9
    cosine_lr: bool = True
    r1_gamma: float = 0.02
    lazy_reg: int = 15
    ema_decay: float = 0.9999
    seed: int = 0
    log_every: int = 100
    sample_every: int = 5000
    checkpoint_every: int = 10000
    precision: str = "fp32"  # one of PRECISIONS
    compile: bool = False  # torch backend fast path: compiled networks, channels_last images


@dataclass(frozen=True)
class Config:
    """The fully resolved configuration of a run."""

    preset: str = "toy2d"
    data: DataConfig = field(default_factory=DataConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Config":
        """Rebuild a Config from `to_dict()` output; unknown keys are an error."""
        sections = {}
        for f in fields(cls):
            if f.name == "preset":
                continue
            section_cls = _SECTION_TYPES[f.name]
            raw = dict(data.get(f.name, {}))
            known = {sf.name for sf in fields(section_cls)}
            unknown = set(raw) - known
            if unknown:
                raise ConfigError(f"unknown key(s) in section '{f.name}': {', '.join(sorted(unknown))}")
            hints = typing.get_type_hints(section_cls)
            sections[f.name] = section_cls(**{k: _coerce(hints[k], v, f"{f.name}.{k}") for k, v in raw.items()})
        return cls(preset=str(data.get("preset", "custom")), **sections)

    @classmethod
    def from_json(cls, text: str) -> "Config":
        return cls.from_dict(json.loads(text))


_SECTION_TYPES = {
    "data": DataConfig,
    "diffusion": DiffusionConfig,
    "generator": GeneratorConfig,
    "discriminator": DiscriminatorConfig,
    "train": TrainConfig,
}


def _coerce(hint: Any, value: Any, key: str) -> Any:
    """Convert a JSON or command-line value to the declared field type, or raise ConfigError."""
    origin = typing.get_origin(hint)
    try:
        if origin is tuple:
            (item_type, _ellipsis) = typing.get_args(hint)
            if isinstance(value, str):
                parts = [p for p in value.replace("(", "").replace(")", "").replace(" ", "").split(",") if p]
            else:
                parts = list(value)
            return tuple(item_type(p) for p in parts)
        if hint is bool:
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if hint is int:
            if isinstance(value, bool):
                raise ValueError(value)
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError(value)
                return int(value)
            return int(str(value).replace("_", ""))
        if hint is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if hint is str:
            return str(value)
    except (TypeError, ValueError):
        name = getattr(hint, "__name__", str(hint))
        raise ConfigError(f"{key}: expected {name}, got {value!r}") from None
    raise ConfigError(f"{key}: unsupported field type {hint}")


def apply_overrides(config: Config, overrides: list[str] | tuple[str, ...]) -> Config:
    """Apply `section.key=value` (or a unique bare `key=value`) overrides.

    Raises ConfigError with a one-line message for a malformed item, an unknown or ambiguous key,
    or a value of the wrong type.
    """
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form key=value")
        key, value = item.split("=", 1)
        key = key.strip()
        section_name, field_name = resolve_key(key)
        section = getattr(config, section_name)
        hint = typing.get_type_hints(type(section))[field_name]
        new_section = replace(section, **{field_name: _coerce(hint, value.strip(), key)})
        config = replace(config, **{section_name: new_section})
    return config


def resolve_key(key: str) -> tuple[str, str]:
    """(section, field) of an override key, `section.field` or a unique bare `field`."""
    if "." in key:
        section_name, field_name = key.split(".", 1)
        section_cls = _SECTION_TYPES.get(section_name)
        if section_cls is None:
            raise ConfigError(f"unknown config section '{section_name}' (known: {', '.join(_SECTION_TYPES)})")
        if field_name not in {f.name for f in fields(section_cls)}:
            raise ConfigError(f"unknown config key '{key}'")
        return section_name, field_name
    owners = [name for name, cls in _SECTION_TYPES.items() if key in {f.name for f in fields(cls)}]
    if not owners:
        raise ConfigError(f"unknown config key '{key}'")
    if len(owners) > 1:
        choices = ", ".join(f"{o}.{key}" for o in owners)
        raise ConfigError(f"ambiguous config key '{key}': use one of {choices}")
    return owners[0], key


def fit_to_data(config: Config, shape: tuple[int, ...]) -> Config:
    """Set the network's input shape from the dataset's item shape ((C, H, W) or (D,))."""
    if len(shape) == 1:
        if config.generator.kind == "ncsnpp":  # an unknown kind is named as such by the training checks
            raise ConfigError(f"dataset '{config.data.dataset}' holds points: use the toy2d preset (MLP networks)")
        return replace(config, generator=replace(config.generator, data_dim=int(shape[0])))
    if config.generator.kind == "mlp":
        raise ConfigError(f"dataset '{config.data.dataset}' holds images: use an image preset (cifar10, tiny, ...)")
    channels, height, _ = shape
    return replace(
        config,
        generator=replace(config.generator, channels=int(channels), image_size=int(height)),
        data=replace(config.data, resolution=int(height)),
    )


def item_shape(config: Config) -> tuple[int, ...]:
    """Shape of one sample in network units: (D,) for point data, (C, H, W) for images."""
    g = config.generator
    return (g.data_dim,) if g.kind == "mlp" else (g.channels, g.image_size, g.image_size)


def _cifar10() -> Config:
    # train_ddgan.py command of the reference README: 4 GPUs x batch 64, 1800 epochs.
    return Config(
        preset="cifar10",
        data=DataConfig(dataset="cifar10", resolution=32),
        diffusion=DiffusionConfig(timesteps=4),
        generator=GeneratorConfig(kind="ncsnpp", image_size=32, nf=128, ch_mult=(1, 2, 2, 2), n_mlp=4),
        discriminator=DiscriminatorConfig(kind="small", ngf=64),
        train=TrainConfig(
            batch_size=256, iterations=1800 * 50_000 // 256, lr_g=1.6e-4, lr_d=1.25e-4,
            r1_gamma=0.02, lazy_reg=15, ema_decay=0.9999,
        ),
    )


def _celeba256() -> Config:
    # 8 GPUs x batch 4, 800 epochs of CelebA-HQ's 27,000-image training split (the reference code's
    # LMDB holds 27,000 train and 3,000 validation images), T = 2.
    return Config(
        preset="celeba256",
        data=DataConfig(dataset="imagefolder", resolution=256),
        diffusion=DiffusionConfig(timesteps=2),
        generator=GeneratorConfig(kind="ncsnpp", image_size=256, nf=64, ch_mult=(1, 1, 2, 2, 4, 4), n_mlp=3),
        discriminator=DiscriminatorConfig(kind="large", ngf=64),
        train=TrainConfig(
            batch_size=32, iterations=800 * 27_000 // 32, lr_g=2e-4, lr_d=1e-4,
            r1_gamma=2.0, lazy_reg=10, ema_decay=0.9999, sample_every=2000,
        ),
    )


def _lsun_church256() -> Config:
    # 8 GPUs x batch 8, 500 epochs of the first 120,000 of LSUN Church Outdoor's 126,227 training
    # images (the subset the reference code trains on), T = 4.
    return Config(
        preset="lsun_church256",
        data=DataConfig(dataset="imagefolder", resolution=256),
        diffusion=DiffusionConfig(timesteps=4),
        generator=GeneratorConfig(kind="ncsnpp", image_size=256, nf=64, ch_mult=(1, 1, 2, 2, 4, 4), n_mlp=3),
        discriminator=DiscriminatorConfig(kind="large", ngf=64),
        train=TrainConfig(
            batch_size=64, iterations=500 * 120_000 // 64, lr_g=1.6e-4, lr_d=1e-4,
            r1_gamma=1.0, lazy_reg=10, ema_decay=0.999, sample_every=2000,
        ),
    )


def _toy2d() -> Config:
    # The paper's toy experiment (MLP G and D, 25-Gaussian grid, T = 4), sized for two minutes on a
    # 2-core CPU: width 256 rather than the paper's 512, and D with 2 hidden layers where G keeps 3;
    # the data doubled in network units (scale 0.5: the grid's modes stand further apart than the
    # forward noise at the first level, so the last denoising step is nearly unimodal); a positional
    # encoding of the input coordinates (5 frequencies); learning rates 1e-3 (G) and 2e-3 (D); R1 0.1.
    # Measured choices and figures: benchmarks/RESULTS.md.
    return Config(
        preset="toy2d",
        data=DataConfig(dataset="grid25", random_flip=False, scale=0.5),
        diffusion=DiffusionConfig(timesteps=4),
        generator=GeneratorConfig(kind="mlp", data_dim=2, nz=2, hidden=256, layers=3, input_frequencies=5),
        discriminator=DiscriminatorConfig(kind="mlp", hidden=256, layers=2, t_emb_dim=32, input_frequencies=5),
        train=TrainConfig(
            batch_size=512, iterations=7500, lr_g=1e-3, lr_d=2e-3, lr_min=1e-5,
            r1_gamma=0.1, lazy_reg=4, ema_decay=0.995, log_every=100, sample_every=1000,
            checkpoint_every=1000,
        ),
    )


def _tiny() -> Config:
    # A CPU-sized NCSN++ (well under a million parameters) for tests and smoke runs.
    return Config(
        preset="tiny",
        data=DataConfig(dataset="cifar10", resolution=16),
        diffusion=DiffusionConfig(timesteps=4),
        generator=GeneratorConfig(
            kind="ncsnpp", image_size=16, nf=16, ch_mult=(1, 2), num_res_blocks=1,
            attn_resolutions=(8,), nz=16, z_emb_dim=32, n_mlp=2,
        ),
        discriminator=DiscriminatorConfig(kind="small", ngf=8, t_emb_dim=32),
        train=TrainConfig(
            batch_size=8, iterations=100, r1_gamma=0.02, lazy_reg=2, ema_decay=0.99,
            log_every=1, sample_every=50, checkpoint_every=50,
        ),
    )


PRESETS: dict[str, typing.Callable[[], Config]] = {
    "cifar10": _cifar10,
    "celeba256": _celeba256,
    "lsun_church256": _lsun_church256,
    "toy2d": _toy2d,
    "tiny": _tiny,
}


def preset(name: str) -> Config:
    """The named preset, or ConfigError listing the known names."""
    try:
        return PRESETS[name]()
    except KeyError:
        raise ConfigError(f"unknown preset '{name}' (known: {', '.join(PRESETS)})") from None
