"""The Typer application object shared by every command module, and the options they share."""

from typing import Any, Optional

import typer

from ddgan_core.errors import DDGANError

app = typer.Typer(
    name="ddgan",
    help="Denoising Diffusion GANs: train, sample, evaluate and inspect few-step diffusion GANs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _non_negative_seed(seed: Optional[int]) -> Optional[int]:
    if seed is not None and seed < 0:
        raise DDGANError(f"--seed must be a non-negative integer, got {seed}")
    return seed


def flag_option(name: str, help: str) -> Any:
    """An on/off flag, shown in --help without a value (Typer would show <bool>, which invites
    `--resume true`, an error)."""
    return typer.Option(False, name, help=help, metavar="")


def seed_option(default: Optional[int] = 0, help: str = "Random seed (a non-negative integer).") -> Any:
    """The --seed option every command shares: negative seeds are refused in one line (numpy's
    generators, which the tinygrad backend and the evaluations draw from, reject them)."""
    return typer.Option(default, "--seed", help=help, callback=_non_negative_seed)
