"""The project's user-facing error type: its message is one line, shown without a traceback."""


class DDGANError(Exception):
    """Bad input or state a user can fix (unknown dataset, missing file, bad override...).

    The CLI prints `error: <message>` and exits non-zero; subclasses name the area.
    """
