"""The one exception type the CLI turns into a clean message and a non-zero exit."""


class LenetEdgeError(Exception):
    """A user-facing error: bad input, missing tool, failed check.

    The message must say what is wrong and, where possible, what to do about it.
    The CLI prints it without a traceback and exits with ``exit_code``.
    """

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


def warn(message: str) -> None:
    """A user-facing warning: one line on stderr, and the command goes on."""
    import sys

    print(f"warning: {message}", file=sys.stderr, flush=True)
