"""The Typer application object shared by every command module."""

import typer

app = typer.Typer(
    name="ddgan",
    help="Denoising Diffusion GANs: train, sample, evaluate and inspect few-step diffusion GANs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
