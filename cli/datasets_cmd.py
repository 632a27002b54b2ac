"""`ddgan datasets`: every dataset, its shape, where it looks for files, and whether it is ready here."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cli.app import app
from ddgan_core.datasets import dataset_statuses


@app.command("datasets")
def datasets(
    data_dir: Path = typer.Option(Path("./data"), "--data-dir", help="Folder the datasets are read from."),
    resolution: int = typer.Option(32, "--resolution", min=1, help="Image side the image datasets are served at."),
) -> None:
    """List every dataset with its shape, where it looks under --data-dir and whether it is ready here."""
    table = Table(title=f"datasets under {data_dir} (images at {resolution} x {resolution})")
    for column in ("name", "shape", "where it looks", "ready here"):
        table.add_column(column, overflow="fold")  # a path is folded onto the next line, never cut short
    for status in dataset_statuses(data_dir, resolution):
        ready = Text("yes", style="green") if status.ready else Text("no", style="red")
        table.add_row(
            Text(status.name, style="bold"),
            Text(" x ".join(map(str, status.shape)) if len(status.shape) > 1 else f"{status.shape[0]}-D points"),
            Text(status.where),  # Text, not markup: paths contain brackets
            ready + Text(f" ({status.why})"),
        )
    Console().print(table)
