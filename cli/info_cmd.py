"""`ddgan info`: the resolved configuration of a preset, with parameter counts when PyTorch is there."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from cli.app import app, flag_option
from ddgan_core.config import PRESETS, apply_overrides, preset
from ddgan_core.run_checks import check_training_config


def parameter_counts(config) -> dict[str, int] | None:
    """Parameter counts from the PyTorch backend, or None where it is not installed."""
    try:
        from backends.torch_cuda.networks import parameter_counts as count
    except ImportError:
        return None
    return count(config)


@app.command()
def info(
    preset_name: str = typer.Option("toy2d", "--preset", "-p", help=f"One of: {', '.join(PRESETS)}."),
    overrides: list[str] = typer.Option([], "--set", help="Override a key: section.key=value (repeatable)."),
    as_json: bool = flag_option("--json", help="Print the configuration as JSON."),
) -> None:
    """Show a preset's fully resolved configuration and its network sizes."""
    config = apply_overrides(preset(preset_name), overrides)
    check_training_config(config)  # what `ddgan train` would refuse is refused here too
    counts = parameter_counts(config)
    if as_json:
        payload = config.to_dict()
        if counts is not None:
            payload["parameters"] = counts
        typer.echo(json.dumps(payload, indent=2))
        return
    console = Console()
    changed = f", with {' '.join(overrides)}" if overrides else ""
    console.print(f"preset {preset_name}{changed}: {config.generator.kind} generator, "
                  f"{config.discriminator.kind} discriminator", highlight=False, markup=False, soft_wrap=True)
    for section, values in config.to_dict().items():
        if not isinstance(values, dict):
            continue
        table = Table(title=section, show_header=False, title_justify="left")
        for key, value in values.items():
            table.add_row(key, str(value))
        console.print(table)
    if counts is None:
        console.print("parameter counts: install the PyTorch backend (pip install 'ddgan\\[torch]') to see them")
    else:
        console.print("parameters: " + ", ".join(f"{name} {n:,}" for name, n in counts.items()))
