"""Fixtures shared by the firmware tests (imported by tests/test_firmware_*.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


def firmware_model_bytes(tmp_path_factory, variant: str = "modern") -> bytes:
    """The bundled model (what ships) or, while it is not committed yet, the project's
    LeNet-5 with seeded random weights, converted by the real TFLite converter."""
    from lenet_edge.bundled import bundled_model
    from lenet_edge.errors import LenetEdgeError

    try:
        return bundled_model(variant).read_bytes()
    except LenetEdgeError:
        from lenet_edge.train.mnist import load_mnist
        from tests.codegen_models import lenet_tflite

        return lenet_tflite(variant, seed=1, images=load_mnist("test")[0])


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory) -> Path:
    """`lenet-edge export --target cortex-m` output (model/ and c/) for the firmware tests."""
    from lenet_edge.codegen.export import export

    out = tmp_path_factory.mktemp("fw-export")
    export(firmware_model_bytes(tmp_path_factory), out, measure_tflm=False, measure_code=False)
    return out


@pytest.fixture(scope="session")
def classic_export_dir(tmp_path_factory) -> Path:
    """The classic variant exported: its fused tanh + average pool and C3 zero slices run
    through every core's kernels (scalar, DSP, Helium) too."""
    from lenet_edge.codegen.export import export

    out = tmp_path_factory.mktemp("fw-export-classic")
    export(firmware_model_bytes(tmp_path_factory, "classic"), out, measure_tflm=False,
           measure_code=False)
    return out


@pytest.fixture(scope="session")
def mnist_digits():
    """The first 100 MNIST test digits as int8 model inputs (pixel - 128), and labels."""
    import numpy as np

    from lenet_edge.train.mnist import load_mnist

    images, labels = load_mnist("test")
    return (images[:100].astype(np.int16) - 128).astype(np.int8), labels[:100]
