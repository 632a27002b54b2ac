"""Entry point of the `ddgan` command.

Command modules register themselves on `cli.app.app` when imported; they import any backend
lazily inside the command, so `ddgan --help` works with neither torch nor tinygrad installed.
A `DDGANError` anywhere becomes a one-line `error: ...` and exit status 2, never a traceback.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import warnings

import typer
from rich.console import Console
from rich.markup import escape

from cli.app import app as _typer_app
from ddgan_core.errors import DDGANError

INTERRUPTED = 130  # the exit status of a command stopped by Ctrl-C (128 + SIGINT)

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


try:  # the Click that Typer parses with: its own copy from typer 0.2x on, else Click itself
    from typer._click.exceptions import ClickException as _ClickException
except ImportError:
    from click.exceptions import ClickException as _ClickException


def _fail(message: str, status: int = 2) -> None:
    Console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(status)


def _os_error_message(exc: OSError) -> str:
    """'File exists: afile' rather than '[Errno 17] File exists: 'afile''."""
    if exc.strerror and exc.filename is not None:
        return f"{exc.strerror}: {exc.filename}"
    return str(exc) or type(exc).__name__


class _Terminated(SystemExit):
    """The exit of a process stopped by SIGTERM."""


def _terminated(signum: int, frame) -> None:
    """SIGTERM (torchrun stopping the other ranks when one fails, a scheduler's kill) unwinds like
    an exception, so a checkpoint being written and a run that never started are cleaned up."""
    raise _Terminated(128 + signum)


def _leave(status: int) -> None:
    """Exit a process stopped by a signal, unwound and cleaned up, without the exit handlers: a
    worker pool whose processes the same signal killed (tinygrad's compilers under `timeout` or a
    terminal's Ctrl-C, which signal the whole group) waits for them forever there."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def app() -> None:
    """Run the CLI, turning project errors, usage errors (Click's, which Typer would draw as a
    several-line box), file-system errors on the paths given and exhausted memory into one line."""
    warnings.formatwarning = _one_line_warning
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        status = _typer_app(standalone_mode=False)
    except DDGANError as exc:
        _fail(str(exc))
    except _ClickException as exc:
        lines = exc.format_message().splitlines()
        if not lines:  # a command group called bare: Click has printed its help
            sys.exit(exc.exit_code)
        context = getattr(exc, "ctx", None)
        hint = f" (see {context.command_path} --help)" if context is not None else ""
        _fail(lines[0] + hint, exc.exit_code)
    except OSError as exc:
        _fail(_os_error_message(exc))
    except MemoryError as exc:
        _fail(f"out of memory: {str(exc) or 'ask for less (a smaller batch, fewer samples)'}")
    except (KeyboardInterrupt, typer.Abort):
        Console(stderr=True).print("interrupted")
        _leave(INTERRUPTED)
    except _Terminated as stopped:
        _leave(stopped.code)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if status == INTERRUPTED:  # Typer turns Ctrl-C into this exit status, and says nothing
        Console(stderr=True).print("interrupted")
    sys.exit(status if isinstance(status, int) else 0)


if __name__ == "__main__":
    app()
