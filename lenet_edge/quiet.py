"""Keep native libraries' start-up chatter off the user's terminal.

TensorFlow, the TFLite converter, LiteRT and tflite-micro print from C++ straight to file
descriptors 1 and 2 (oneDNN notices, absl warnings, "Created TensorFlow Lite XNNPACK
delegate", expected allocation failures), bypassing Python's logging. Their real errors
still arrive as Python exceptions.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings


@contextlib.contextmanager
def silenced_native_output(*fds: int):
    """Point ``fds`` (default: 1 and 2) at /dev/null for the duration of the block."""
    fds = fds or (1, 2)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in fds]
    try:
        with open(os.devnull, "wb") as devnull:
            for fd in fds:
                os.dup2(devnull.fileno(), fd)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip(fds, saved):
            os.dup2(copy, fd)
            os.close(copy)


def import_tensorflow_quietly(what: str = "this command") -> None:
    """Import TensorFlow without its C++ start-up lines.

    TF 2.21 prints some of them before it reads TF_CPP_MIN_LOG_LEVEL, so fd 2 is silenced
    for the import itself. Without TensorFlow installed, ``what`` ("training") is named in
    the one-line error that says which extra to install.
    """
    from lenet_edge.optional import require_tensorflow

    require_tensorflow(what)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if sys.modules.get("tensorflow") is not None:
        return
    with silenced_native_output(2):
        import tensorflow  # noqa: F401
