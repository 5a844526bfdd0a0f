"""Fixtures shared by the codegen tests (imported by tests/test_codegen_*.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def mnist_test():
    from lenet_edge.train.mnist import load_mnist

    return load_mnist("test")


@pytest.fixture(scope="session")
def lenet_model_files(tmp_path_factory, mnist_test):
    """variant -> .tflite path: the bundled models (what ships), or, while they are not
    committed yet, the project's LeNet-5 definitions with random weights, converted here."""
    from lenet_edge.bundled import bundled_model
    from lenet_edge.errors import LenetEdgeError

    from tests.codegen_models import lenet_tflite

    paths = {}
    for variant in ("modern", "classic"):
        try:
            paths[variant] = bundled_model(variant)
        except LenetEdgeError:
            path = tmp_path_factory.mktemp("models") / f"{variant}.tflite"
            path.write_bytes(lenet_tflite(variant, seed=1, images=mnist_test[0]))
            paths[variant] = path
    return paths
