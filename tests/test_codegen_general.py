"""Generality: small generated models with other shapes and forms, each bit-exact with TFLM
on every tensor, so the generator is not tuned to one network."""

from __future__ import annotations

import numpy as np
import pytest

from lenet_edge.codegen.export import export
from lenet_edge.codegen.host_build import (
    HostModel,
    build_sanitizer_harness,
    build_shared_library,
    run_sanitizer_harness,
)
from lenet_edge.codegen.reader import parse_model
from lenet_edge.quantize.tflm import TflmModel
from tests.codegen_fixtures import assert_matches_tflm, stress_inputs
from tests.codegen_models import convert_int8


def _strided(L):
    inputs = L.Input((12, 12, 3), batch_size=1)
    x = L.Conv2D(5, 3, strides=2, padding="same", activation="relu6")(inputs)
    x = L.MaxPooling2D(3, strides=2, padding="same")(x)
    x = L.Conv2D(4, 2, padding="valid")(x)
    x = L.AveragePooling2D(2, strides=1, padding="same")(x)
    x = L.Flatten()(x)
    x = L.Dense(7, activation="relu")(x)
    return inputs, L.Dense(3)(x)


def _zero_slices(L):
    inputs = L.Input((10, 10, 4), batch_size=1)
    x = L.Conv2D(6, 3, padding="same", activation="tanh", name="masked")(inputs)
    x = L.AveragePooling2D(3, strides=3, padding="valid")(x)
    x = L.Conv2D(3, 1, activation="sigmoid")(x)
    x = L.Flatten()(x)
    return inputs, L.Dense(4)(x)


def _padded(L):
    inputs = L.Input((9, 7, 2), batch_size=1)
    x = L.ZeroPadding2D(((1, 2), (0, 3)))(inputs)
    x = L.Conv2D(8, (3, 2), strides=(2, 1), padding="valid", activation="relu")(x)
    x = L.MaxPooling2D((2, 3), strides=(1, 2), padding="valid")(x)
    x = L.Flatten()(x)
    return inputs, L.Dense(5, activation="tanh")(x)


def _fused_pools(L):
    """Conv + pool pairs the generator fuses: non-square pools, a strided SAME conv, and
    a conv with all-zero kernel slices feeding an average pool."""
    inputs = L.Input((11, 9, 3), batch_size=1)
    x = L.Conv2D(5, 3, strides=(1, 2), padding="same", activation="relu")(inputs)
    x = L.MaxPooling2D((2, 1))(x)
    x = L.Conv2D(6, (2, 3), padding="valid", name="masked")(x)
    x = L.AveragePooling2D(2)(x)
    x = L.Flatten()(x)
    return inputs, L.Dense(4)(x)


def _depthwise(L):
    """DEPTHWISE_CONV_2D with SAME padding and a depth multiplier, then a strided VALID one
    with a non-square kernel (the shapes of a MobileNet-style block)."""
    inputs = L.Input((9, 8, 3), batch_size=1)
    x = L.DepthwiseConv2D(3, padding="same", depth_multiplier=2, activation="relu")(inputs)
    x = L.Conv2D(4, 1, activation="relu6")(x)
    x = L.DepthwiseConv2D((3, 2), strides=2, padding="valid")(x)
    x = L.Flatten()(x)
    return inputs, L.Dense(5)(x)


def _subsampling(L):
    """LeNet-5 (1998)'s trainable subsampling, a DEPTHWISE_CONV_2D whose kernel is its
    stride, fused into the conv before it (with its TANH, and a ReLU6 clamp of its own,
    an odd width dropping a column), and one the generator declines (stride 1)."""
    inputs = L.Input((12, 11, 2), batch_size=1)
    x = L.Conv2D(4, 3, padding="same", activation="tanh")(inputs)
    x = L.DepthwiseConv2D(2, strides=2, padding="valid", activation="tanh")(x)
    x = L.Conv2D(5, 2, padding="valid", activation="relu")(x)
    x = L.DepthwiseConv2D((2, 1), strides=(2, 1), activation="relu6")(x)
    x = L.Conv2D(3, 1, activation="tanh")(x)
    x = L.DepthwiseConv2D(2, strides=1, activation="tanh")(x)
    return inputs, L.Dense(4)(L.Flatten()(x))


def _global_mean(keepdims):
    """MEAN over H and W: GlobalAveragePooling2D, with or without kept dimensions."""
    def make(L):
        inputs = L.Input((7, 6, 3), batch_size=1)
        x = L.Conv2D(6, 3, padding="same", activation="relu")(inputs)
        x = L.GlobalAveragePooling2D(keepdims=keepdims)(x)
        return inputs, L.Dense(4)(L.Flatten()(x))
    return make


def _branches(L):
    """Graphs that are not a chain: a residual ADD, a MUL of two tensors, CONCATENATION on
    channels and on rows (steps reading two or three activations)."""
    inputs = L.Input((6, 6, 3), batch_size=1)
    a = L.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = L.Add()([a, L.Conv2D(4, 1, padding="same")(inputs)])
    x = L.Multiply()([x, L.Conv2D(4, 3, padding="same", activation="tanh")(x)])
    x = L.Concatenate()([x, a, L.Conv2D(2, 1)(inputs)])
    x = L.MaxPooling2D(2)(x)
    x = L.Concatenate(axis=1)([x, x])
    return inputs, L.Dense(3)(L.Flatten()(x))


MODELS = {
    "branches": (_branches, True),
    "global_mean_keepdims": (_global_mean(True), True),
    "global_mean_flat": (_global_mean(False), True),
    "depthwise_per_channel": (_depthwise, True),
    "depthwise_per_tensor": (_depthwise, False),
    "fused_pools": (_fused_pools, True),
    "subsampling": (_subsampling, True),
    "strided_same_per_channel": (_strided, True),
    "strided_same_per_tensor": (_strided, False),
    "zero_slices": (_zero_slices, True),
    "pad_nonsquare": (_padded, True),
}


def _build(name: str) -> bytes:
    import keras

    make, per_channel = MODELS[name]
    keras.utils.set_random_seed(7)
    inputs, outputs = make(keras.layers)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(3)
    weights = [w if w.ndim > 1 else rng.normal(0, 0.1, w.shape).astype(w.dtype)
               for w in model.get_weights()]
    model.set_weights(weights)
    if name in ("zero_slices", "fused_pools"):
        layer = model.get_layer("masked")
        kernel, bias = layer.get_weights()  # (kh, kw, in, out)
        for out_c, in_c in [(0, 1), (0, 2), (2, 0), (3, 3), (5, 1)]:
            kernel[:, :, in_c, out_c] = 0.0
        kernel[:, :, :, 4] = 0.0  # an output channel with no connection at all
        layer.set_weights([kernel, bias])
    return convert_int8(model, tuple(model.input.shape[1:]), per_channel=per_channel)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_generated_model_bit_exact(name, tmp_path):
    data = _build(name)
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(data)
    graph = parse_model(data, path.name)
    kinds = {op.kind for op in graph.ops}
    conv_weights = [graph.tensor(op.inputs[1]) for op in graph.ops if op.kind == "CONV_2D"]
    if name.endswith("per_tensor"):
        fc_weights = [graph.tensor(op.inputs[1]) for op in graph.ops
                      if op.kind == "FULLY_CONNECTED"]
        assert all(not w.quant.per_channel for w in conv_weights + fc_weights)
    else:
        assert any(w.quant.per_channel for w in conv_weights)
    result = export(data, tmp_path / "out", measure_tflm=False, measure_code=False)
    unfused = export(data, tmp_path / "unfused", measure_tflm=False, measure_code=False,
                     fuse=False)
    if name == "zero_slices":
        assert {"TANH", "LOGISTIC", "AVERAGE_POOL_2D"} <= kinds
        assert result.report["macs_executed"] < result.report["macs_dense"]
        assert any(layer["kernel"] == "conv2d_sparse" for layer in result.report["layers"])
    if name == "fused_pools":
        fused = [layer["ops"] for layer in result.report["layers"] if len(layer["ops"]) > 1]
        assert ["CONV_2D", "MAX_POOL_2D"] in fused and ["CONV_2D", "AVERAGE_POOL_2D"] in fused
        assert any(layer["kernel"] == "conv2d_sparse" for layer in result.report["layers"])
    if name == "subsampling":
        fused = [layer["ops"] for layer in result.report["layers"] if len(layer["ops"]) > 1]
        assert fused[:2] == [["CONV_2D", "TANH", "DEPTHWISE_CONV_2D", "TANH"],
                             ["CONV_2D", "DEPTHWISE_CONV_2D"]], fused
        assert ["DEPTHWISE_CONV_2D"] in [layer["ops"] for layer in result.report["layers"]]
        assert all(len(layer["ops"]) == 1 for layer in unfused.report["layers"])
    if name == "branches":
        assert {"ADD", "MUL", "CONCATENATION"} <= kinds
    if name.startswith("global_mean"):
        assert "MEAN" in kinds
    if name.startswith("depthwise"):
        assert sum(op.kind == "DEPTHWISE_CONV_2D" for op in graph.ops) == 2
    if name == "pad_nonsquare":
        assert "PAD" in kinds
    if name.startswith("strided"):
        assert {"RESHAPE", "MAX_POOL_2D", "AVERAGE_POOL_2D"} <= kinds
    libs = [HostModel(build_shared_library(r.c_dir, r.out_dir / "lib.so"))
            for r in (result, unfused)]
    size = graph.tensor(graph.inputs[0]).size
    inputs = stress_inputs(1500, size=size, side=0, seed=sorted(MODELS).index(name))
    assert_matches_tflm(path, libs, inputs)
    if name.startswith(("depthwise", "global_mean", "branches", "subsampling")):  # kernels newer than the LeNet sanitizer runs
        exe = build_sanitizer_harness(result.c_dir, tmp_path / "asan")
        out = run_sanitizer_harness(exe, inputs, tmp_path, graph.tensor(graph.outputs[0]).size)
        assert np.array_equal(out, libs[0].invoke_batch(inputs))


def test_float_boundary_ops_stay_outside_the_c_library(tmp_path):
    """A float-in/float-out model (the converter adds QUANTIZE at the input, DEQUANTIZE at
    the output): the C library takes the QUANTIZE output and returns the DEQUANTIZE input,
    bit-exact with TFLM's values of those tensors, and its header states their quantization."""
    import re

    import keras

    keras.utils.set_random_seed(7)
    inputs, outputs = _strided(keras.layers)
    model = keras.Model(inputs, outputs)
    data = convert_int8(model, tuple(model.input.shape[1:]), float_io=True)
    graph = parse_model(data, "float_io.tflite")
    assert graph.ops[0].kind == "QUANTIZE" and graph.ops[-1].kind == "DEQUANTIZE"
    c_input, c_output = graph.ops[0].outputs[0], graph.ops[-1].inputs[0]

    result = export(data, tmp_path / "out", measure_tflm=False, measure_code=False)
    header = (result.c_dir / "lenet5_model.h").read_text()
    zero_point = int(re.search(r"#define LENET5_INPUT_ZERO_POINT \(?(-?\d+)", header).group(1))
    assert zero_point == graph.tensor(c_input).quant.zero_point
    lib = HostModel(build_shared_library(result.c_dir, result.out_dir / "lib.so"))

    ref = TflmModel(data, preserve_all_tensors=True)
    rng = np.random.default_rng(11)
    # Beyond the calibrated [0, 1) range too, so the input QUANTIZE saturates.
    floats = rng.uniform(-0.5, 1.5, (400, *model.input.shape[1:])).astype(np.float32)
    int8_inputs, expected = [], []
    for x in floats:
        float_out = ref.invoke(x)
        int8_inputs.append(ref.tensor(c_input).reshape(-1))
        expected.append(ref.tensor(c_output).reshape(-1))
        out_quant = graph.tensor(c_output).quant
        dequantized = (expected[-1].astype(np.float32) - out_quant.zero_point) * out_quant.scale
        assert np.allclose(float_out.reshape(-1), dequantized, rtol=0, atol=1e-6)
    assert {-128, 127} <= set(np.concatenate(int8_inputs).tolist())
    got = lib.invoke_batch(np.stack(int8_inputs))
    assert np.array_equal(got, np.stack(expected))
