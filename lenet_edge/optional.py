"""TensorFlow is optional: it comes with the [train] extra.

Exporting, building, flashing and validating a .tflite need only the light dependencies
(tflite-micro, ai-edge-litert, numpy, ...). Training, quantizing and reading Keras models
need TensorFlow; without it they stop with one line that names the extra to install.
"""

from __future__ import annotations

import importlib.util
import sys

from lenet_edge.errors import LenetEdgeError

TRAIN_EXTRA = "pip install 'lenet-edge[train]'"
MODULES = ("tensorflow", "keras")


def have_tensorflow() -> bool:
    """True when TensorFlow and Keras can be imported (checked without importing them)."""
    for name in MODULES:
        if name in sys.modules:
            if sys.modules[name] is None:  # import blocked
                return False
            continue
        try:
            if importlib.util.find_spec(name) is None:
                return False
        except (ImportError, ValueError):
            return False
    return True


def missing_tensorflow(what: str) -> LenetEdgeError:
    return LenetEdgeError(f"{what} needs TensorFlow, which is not installed: {TRAIN_EXTRA} "
                          "(exporting, building and validating a .tflite do not need it)")


def require_tensorflow(what: str) -> None:
    if not have_tensorflow():
        raise missing_tensorflow(what)
