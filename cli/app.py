"""The Typer application object shared by every command module, and the options they share."""

from typing import Any, Optional

import typer
from typer.core import TyperCommand, TyperGroup

from ddgan_core.config import SEED_LIMIT
from ddgan_core.errors import DDGANError


def _without_value(option: Any) -> Any:
    """The --help option, shown without a value (Typer 0.2x draws `--help <bool>`), as flag_option's."""
    if option is not None:
        option.metavar = ""
    return option


class _Command(TyperCommand):
    def get_help_option(self, ctx: Any) -> Any:
        return _without_value(super().get_help_option(ctx))


class _Group(TyperGroup):
    def get_help_option(self, ctx: Any) -> Any:
        return _without_value(super().get_help_option(ctx))


class App(typer.Typer):
    """A Typer app whose command groups and commands show --help without a value."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(cls=_Group, **settings)

    def command(self, *args: Any, **settings: Any) -> Any:
        return super().command(*args, **{"cls": _Command, **settings})


app = App(
    name="ddgan",
    help="Denoising Diffusion GANs: train, sample, evaluate and inspect few-step diffusion GANs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _checked_seed(seed: Optional[int]) -> Optional[int]:
    if seed is not None and not 0 <= seed < SEED_LIMIT:
        raise DDGANError(f"--seed must be an integer from 0 to 2**32 - 1, got {seed}")
    return seed


def flag_option(name: str, help: str) -> Any:
    """An on/off flag, shown in --help without a value (Typer would show <bool>, which invites
    `--resume true`, an error)."""
    return typer.Option(False, name, help=help, metavar="")


def seed_option(default: Optional[int] = 0, help: str = "Random seed, 0 <= S < 2**32.") -> Any:
    """The --seed option every command shares: seeds outside [0, 2**32) are refused in one line
    (numpy's generators reject negative ones; torch's overflow on large ones, once the training
    stream's seed is derived from it)."""
    return typer.Option(default, "--seed", help=help, callback=_checked_seed)
