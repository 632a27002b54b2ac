"""A stop that a signal asked for, kept until the training loop can act on it.

A signal handler's exception is raised wherever the main thread happens to be. Inside a
finaliser (a `__del__` or weakref callback run by the garbage collector) Python prints it as
"Exception ignored" and drops it, and training would go on as if Ctrl-C had never been pressed
(seen in CI: a run still training 60 s after SIGINT). So the handler also records the exception
here, and the training loop raises it at its next step if it was dropped.
"""

from __future__ import annotations

_pending: BaseException | None = None


def record(stop: BaseException) -> None:
    """Remember `stop` (the exception a signal handler is about to raise)."""
    global _pending
    _pending = stop


def raise_if_pending() -> None:
    """Raise the recorded stop, once, if there is one (call where stopping is safe)."""
    global _pending
    if _pending is not None:
        stop, _pending = _pending, None
        raise stop
