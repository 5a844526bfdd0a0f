"""Every LeNet variant (bundled.VARIANTS): the host-built C equals TFLM on every output
byte and every intermediate tensor, for all 10,000 MNIST test digits and 10,000
random/extreme inputs.
Two builds per variant: the fused one that ships (its outputs and the tensors it
materialises) and the unfused one (fuse=False), which traces every op output.

Split in chunks so pytest-xdist spreads the TFLM reference runs over the workers.
"""

from __future__ import annotations

import numpy as np
import pytest

from lenet_edge.bundled import VARIANTS
from lenet_edge.codegen.export import export
from lenet_edge.codegen.host_build import HostModel, build_shared_library
from lenet_edge.quantize.evaluate import input_spec, model_inputs
from lenet_edge.train.zip1989 import resize_bilinear
from tests.codegen_fixtures import (  # noqa: F401
    assert_matches_tflm,
    lenet_model_files,
    mnist_test,
    stress_inputs,
)

CHUNKS = 4
N = 10_000


@pytest.fixture(scope="session")
def host_libs(lenet_model_files, tmp_path_factory):
    libs = {}
    for variant, path in lenet_model_files.items():
        libs[variant] = []
        for fuse in (True, False):
            out = tmp_path_factory.mktemp(f"exact-{variant}-{'fused' if fuse else 'unfused'}")
            result = export(path.read_bytes(), out, measure_tflm=False, measure_code=False,
                            fuse=fuse)
            libs[variant].append(HostModel(build_shared_library(result.c_dir, out / "lib.so")))
    return libs


def _chunk(array: np.ndarray, k: int) -> np.ndarray:
    step = len(array) // CHUNKS
    return array[k * step: (k + 1) * step if k < CHUNKS - 1 else len(array)]


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(CHUNKS))
@pytest.mark.parametrize("variant", VARIANTS)
def test_all_mnist_test_digits(variant, chunk, host_libs, lenet_model_files, mnist_test):
    images = mnist_test[0]
    assert len(images) == N
    model = lenet_model_files[variant]
    shape = input_spec(model)[0]
    if shape[:2] != images.shape[1:]:  # zip1989: all 10,000 digits resized as its split is
        images = resize_bilinear(images, shape[0])
    inputs = model_inputs(model, _chunk(images, chunk))
    assert_matches_tflm(model, host_libs[variant], inputs)


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(CHUNKS))
@pytest.mark.parametrize("variant", VARIANTS)
def test_random_and_extreme_inputs(variant, chunk, host_libs, lenet_model_files):
    side = input_spec(lenet_model_files[variant])[0][0]
    inputs = _chunk(stress_inputs(N, size=side * side, side=side), chunk)
    assert_matches_tflm(lenet_model_files[variant], host_libs[variant], inputs)
