"""A user's own model and data: a dynamic-batch .tflite (shape arithmetic folded), Keras
models that are not LeNets (BatchNormalization folded, or kept as exact MUL and ADD), and
a small RGB model trained here on generated data, exported quietly and validated on QEMU
exactly."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from lenet_edge.cli import main
from lenet_edge.codegen.export import export
from lenet_edge.codegen.host_build import (
    HostModel,
    build_sanitizer_harness,
    build_shared_library,
    run_sanitizer_harness,
)
from lenet_edge.codegen.reader import parse_model
from lenet_edge.quantize.tflm import TflmModel
from tests.codegen_fixtures import stress_inputs
from tests.codegen_models import convert_int8

QEMU_BOARD = "qemu-mps2-an386"


def _with_batch_norm_stats(model, seed=0):
    """Non-trivial moving statistics, so a folded BatchNormalization changes the weights."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 2, n), rng.normal(0, 0.3, n),
                               rng.normal(0, 0.3, n), rng.uniform(0.5, 2, n)])
    return model


def test_dynamic_batch_tflite_folds_shape_ops_and_is_bit_exact(tmp_path):
    """`from_keras_model` on a free batch: SHAPE -> STRIDED_SLICE -> PACK feed Flatten's
    RESHAPE. They are folded at export (batch 1) and every other tensor matches TFLM."""
    import keras

    L = keras.layers
    keras.utils.set_random_seed(5)
    model = _with_batch_norm_stats(keras.Sequential([
        keras.Input((10, 10, 2)),  # no batch size: the converter keeps it dynamic
        L.Conv2D(6, 3, activation=None), L.BatchNormalization(), L.ReLU(),
        L.MaxPooling2D(2), L.Flatten(), L.Dense(8), L.BatchNormalization(), L.Dense(4)]))
    data = convert_int8(model, (10, 10, 2))
    path = tmp_path / "dynamic.tflite"
    path.write_bytes(data)
    kinds = [op.kind for op in parse_model(data).ops]
    assert {"SHAPE", "STRIDED_SLICE", "PACK"} <= set(kinds) and "MUL" not in kinds
    unfused = export(data, tmp_path / "unfused", measure_tflm=False, measure_code=False,
                     fuse=False)
    kept = {op for layer in unfused.report["layers"] for op in layer["ops"]}
    assert not kept & {"SHAPE", "STRIDED_SLICE", "PACK"}
    _assert_bit_exact(data, path, tmp_path, stress_inputs(300, size=200, side=0, seed=9))


def test_unfolded_batch_norm_and_rescaling_become_exact_int8_mul_and_add(tmp_path):
    """A BatchNormalization after an activation (conv and dense) and a Rescaling layer stay
    as MUL and ADD with a constant operand (per channel, or a scalar): bit-exact with TFLM."""
    import keras

    L = keras.layers
    keras.utils.set_random_seed(6)
    inputs = L.Input((9, 9, 3), batch_size=1)
    x = L.Conv2D(5, 3, activation="relu")(inputs)
    x = L.Rescaling(1.7, offset=-0.4)(x)  # scalar MUL and ADD
    x = L.MaxPooling2D(2)(x)
    x = L.Conv2D(4, 2, activation="relu")(x)
    x = L.BatchNormalization()(x)  # after the ReLU: MUL + ADD per channel
    x = L.Flatten()(x)
    x = L.Dense(6, activation="relu")(x)
    x = L.BatchNormalization()(x)
    model = _with_batch_norm_stats(keras.Model(inputs, L.Dense(3)(x)), seed=2)
    data = convert_int8(model, (9, 9, 3))
    path = tmp_path / "bn.tflite"
    path.write_bytes(data)
    graph = parse_model(data)
    kinds = [op.kind for op in graph.ops]
    assert kinds.count("MUL") >= 2 and kinds.count("ADD") >= 2
    scalars = [op for op in graph.ops if op.kind in ("MUL", "ADD")
               and any(graph.tensor(t).is_constant and graph.tensor(t).size == 1
                       for t in op.inputs)]
    assert scalars  # the Rescaling's broadcast scalar
    _assert_bit_exact(data, path, tmp_path, stress_inputs(400, size=243, side=0, seed=4))


def _assert_bit_exact(data, path, tmp_path, inputs):
    """Fused and unfused C: outputs and every traced tensor equal TFLM's; the unfused build
    traces every int8 tensor an op writes."""
    ref = TflmModel(path, preserve_all_tensors=True)
    graph = parse_model(data)
    int8_outputs = sorted(t for op in graph.ops for t in op.outputs
                          if graph.tensor(t).dtype == "int8")
    for fuse in (True, False):
        result = export(data, tmp_path / f"fuse{fuse}", measure_tflm=False,
                        measure_code=False, fuse=fuse)
        lib = HostModel(build_shared_library(result.c_dir, result.out_dir / "lib.so"))
        outputs, traces = lib.trace_batch(inputs)
        if not fuse:
            assert sorted(traces) == int8_outputs
        else:  # the new kernels are clean under ASan/UBSan too
            exe = build_sanitizer_harness(result.c_dir, result.out_dir / "asan")
            sanitized = run_sanitizer_harness(exe, inputs, result.out_dir, outputs.shape[1])
            assert np.array_equal(sanitized, outputs)
        for i, x in enumerate(inputs):
            assert np.array_equal(ref.invoke(x).reshape(-1), outputs[i]), i
            for t, values in traces.items():
                assert np.array_equal(ref.tensor(t).reshape(-1), values[i]), (i, t)


def _shapes(n: int, seed: int):
    """16x16 RGB images of 3 classes: a red square, a green row bar, a blue column bar, at
    random places on dark noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    x = rng.integers(0, 70, (n, 16, 16, 3))
    for i, c in enumerate(labels):
        y0, x0 = rng.integers(0, 10, 2)
        if c == 0:
            x[i, y0:y0 + 6, x0:x0 + 6, 0] += 170
        elif c == 1:
            x[i, y0:y0 + 3, :, 1] += 170
        else:
            x[i, :, x0:x0 + 3, 2] += 170
    return np.clip(x, 0, 255).astype(np.uint8), labels.astype(np.int64)


@pytest.fixture(scope="module")
def rgb_model(tmp_path_factory):
    """A user's RGB model (not a LeNet, BatchNormalization after its first conv) trained a
    few seconds on generated data, saved as .keras, with the data as .npz and PNG folders."""
    import keras
    from PIL import Image

    L = keras.layers
    root = tmp_path_factory.mktemp("rgb")
    x_train, y_train = _shapes(900, 0)
    x_test, y_test = _shapes(120, 1)
    np.savez(root / "shapes.npz", x_train=x_train, y_train=y_train, x_test=x_test,
             y_test=y_test)
    for i, (image, label) in enumerate(zip(x_test, y_test)):
        folder = root / "png" / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i:04d}.png")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((16, 16, 3)), L.Conv2D(8, 3, activation=None), L.BatchNormalization(),
        L.ReLU(), L.MaxPooling2D(2), L.Conv2D(8, 3, activation="relu"), L.MaxPooling2D(2),
        L.Flatten(), L.Dense(3)], name="shapes_net")
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_train / 255.0, y_train, epochs=6, batch_size=32, verbose=0)
    model.save(root / "mine.keras")
    return root


@pytest.mark.qemu
@pytest.mark.arm
def test_rgb_model_exports_quietly_evaluates_and_validates_on_qemu_exactly(rgb_model,
                                                                          tmp_path):
    root = rgb_model
    out = tmp_path / "export"
    # A user's Keras model: converted (calibrated on the .npz's x_train), one warning line
    # that it is not a LeNet, and no TensorFlow C++ chatter.
    result = subprocess.run(
        [sys.executable, "-m", "lenet_edge", "export", "--model", str(root / "mine.keras"),
         "--data", str(root / "shapes.npz"), "--out", str(out), "--no-tflm-arena"],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.strip().splitlines() == [
        "warning: mine.keras: 'shapes_net' is not one of lenet-edge's LeNet models; it is "
        "converted as it is (no LeNet op-list check, no variant in reports)"]
    ops = json.loads((out / "export_report.json").read_text())["layers"]
    assert "MUL" not in {op for layer in ops for op in layer["ops"]}  # BN folded
    tflite = out / "model" / "lenet5_int8.tflite"

    # eval on the .npz and on the same images as PNG folders: C identical to TFLM.
    for data, name in ((root / "shapes.npz", "eval_npz"), (root / "png", "eval_png")):
        assert main(["eval", "--model", str(tflite), "--keras", str(root / "mine.keras"),
                     "--data", str(data), "--json", str(tmp_path / f"{name}.json")]) == 0
    npz = json.loads((tmp_path / "eval_npz.json").read_text())
    png = json.loads((tmp_path / "eval_png.json").read_text())
    assert npz["images"] == png["images"] == 120
    assert npz["backends"]["c"]["bytes_equal_tflm"] == 120
    assert npz["backends"]["float"]["accuracy"] > 0.9  # it did learn the shapes
    for backend in ("float", "tflm", "c"):
        assert npz["backends"][backend]["accuracy"] == png["backends"][backend]["accuracy"]

    # On the device (QEMU): 768-byte RGB inputs over the link, byte-identical to TFLM.
    report_dir = tmp_path / "val"
    assert main(["validate", "--board", QEMU_BOARD, "--export", str(out), "--data",
                 str(root / "shapes.npz"), "--count", "60", "--report", str(report_dir),
                 "--per-layer", "1"]) == 0
    report = json.loads((report_dir / "report.json").read_text())
    assert report["count"] == 60 and report["info"]["input_size"] == 16 * 16 * 3
    assert report["agreement"]["device_tflm_exact_logits"] == 1.0
    assert report["per_layer"]["first_difference"] is None
    assert report["accuracy"]["device"] == report["accuracy"]["tflm"] > 0.85
    assert report["data"]["name"] == "shapes.npz"
    # The .keras it was exported from is kept beside the .tflite: the float reference.
    assert report["accuracy"]["float"] > 0.85 and report["agreement"]["device_float_argmax"] > 0.9
    md = (report_dir / "report.md").read_text()
    assert "shapes.npz" in md and "digits" not in md and "MNIST" not in md
