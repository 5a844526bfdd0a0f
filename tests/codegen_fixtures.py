"""Fixtures shared by the codegen tests (imported by tests/test_codegen_*.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def mnist_test():
    from lenet_edge.train.mnist import load_mnist

    return load_mnist("test")


@pytest.fixture(scope="session")
def lenet_model_files(tmp_path_factory, mnist_test):
    """variant -> .tflite path for every variant: the bundled models (what ships), or, while
    they are not committed yet, the project's LeNet definitions with random weights,
    converted here."""
    from lenet_edge.bundled import VARIANTS, bundled_model
    from lenet_edge.errors import LenetEdgeError

    from tests.codegen_models import lenet_tflite

    paths = {}
    for variant in VARIANTS:
        try:
            paths[variant] = bundled_model(variant)
        except LenetEdgeError:
            path = tmp_path_factory.mktemp("models") / f"{variant}.tflite"
            path.write_bytes(lenet_tflite(variant, seed=1, images=mnist_test[0]))
            paths[variant] = path
    return paths


def stress_inputs(n: int, size: int = 784, side: int = 28, seed: int = 1234):
    """n int8 inputs: extremes and patterns first, then random ones of several kinds."""
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side] if side * side == size else (None, None)
    fixed = [np.full(size, -128), np.full(size, 127), np.zeros(size), np.full(size, -1)]
    if yy is not None:
        for period in (1, 2, 4, 7):
            board = ((yy // period + xx // period) % 2).reshape(-1)
            fixed += [np.where(board, 127, -128), np.where(board, -128, 127)]
        fixed += [np.where(yy.reshape(-1) % 2, 127, -128), np.where(xx.reshape(-1) % 3, -128, 127)]
    out = np.empty((n, size), dtype=np.int8)
    k = min(len(fixed), n)
    out[:k] = np.array(fixed[:k], dtype=np.int8)
    kinds = (n - k)
    uniform = rng.integers(-128, 128, size=(kinds, size))
    extremes = np.where(rng.random((kinds, size)) < 0.5, -128, 127)
    sparse = np.where(rng.random((kinds, size)) < 0.15, rng.integers(-128, 128, (kinds, size)), -128)
    choice = rng.integers(0, 3, size=kinds)[:, None]
    out[k:] = np.where(choice == 0, uniform, np.where(choice == 1, extremes, sparse))
    return out


def assert_matches_tflm(model_path, libs, inputs):
    """Outputs and every traced tensor of each C library equal TFLM's, input by input.

    ``libs``: one HostModel or several (e.g. the fused build, which traces the tensors it
    materialises, and the unfused build, which traces every op output). Together they must
    trace every op output of the model."""
    import numpy as np

    from lenet_edge.quantize.tflm import TflmModel

    libs = libs if isinstance(libs, (list, tuple)) else [libs]
    ref = TflmModel(model_path, preserve_all_tensors=True)
    every = sorted(t for op in ref.ops for t in op.outputs)
    runs = [lib.trace_batch(inputs) for lib in libs]
    traced = set()
    for _, traces in runs:
        assert set(traces) <= set(every)
        traced |= set(traces)
    assert sorted(traced) == every
    for i, x in enumerate(inputs):
        expected = ref.invoke(x).reshape(-1)
        for k, (outputs, traces) in enumerate(runs):
            if not np.array_equal(expected, outputs[i]):
                raise AssertionError(f"library {k}, input {i}: output {outputs[i]} != TFLM "
                                     f"{expected}")
            for t, values in traces.items():
                want = ref.tensor(t).reshape(-1)
                if not np.array_equal(want, values[i]):
                    bad = np.flatnonzero(want != values[i])
                    raise AssertionError(
                        f"library {k}, input {i}: tensor {t} differs from TFLM at {bad.size} "
                        f"positions, first {bad[0]}: {values[i][bad[0]]} vs {want[bad[0]]}")
