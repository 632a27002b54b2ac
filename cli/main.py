"""Entry point of the `ddgan` command.

Command modules register themselves on `cli.app.app` when imported; they import any backend
lazily inside the command, so `ddgan --help` works with neither torch nor tinygrad installed.
A `DDGANError` anywhere becomes a one-line `error: ...` and exit status 2, never a traceback.
"""

from __future__ import annotations

import importlib
import sys
import warnings

from rich.console import Console
from rich.markup import escape

from cli.app import app as _typer_app
from ddgan_core.errors import DDGANError

COMMAND_MODULES = (
    "cli.schedule_cmd",
    "cli.info_cmd",
    "cli.figure_cmd",
    "cli.datasets_cmd",
    "cli.train_cmd",
    "cli.sample_cmd",
    "cli.eval_cmd",
    "cli.bench_cmd",
    "cli.plot_cmd",
)

for _module in COMMAND_MODULES:
    importlib.import_module(_module)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


def app() -> None:
    """Run the CLI, turning project errors into one-line messages."""
    warnings.formatwarning = _one_line_warning
    try:
        _typer_app()
    except DDGANError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    app()
