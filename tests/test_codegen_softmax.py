"""SOFTMAX: the generated C equals TFLM's int8 softmax bit for bit, over many quantizations."""

from __future__ import annotations

import flatbuffers
import numpy as np
import pytest

from lenet_edge.codegen.export import export
from lenet_edge.codegen.host_build import HostModel, build_shared_library
from lenet_edge.codegen.softmax import exp_on_negative_values
from lenet_edge.quantize.tflm import TflmModel
from tests.codegen_fixtures import assert_matches_tflm


def softmax_model(shape: tuple[int, ...], input_scale: float, input_zp: int,
                  beta: float) -> bytes:
    """A one-op int8 SOFTMAX .tflite with the quantization TFLM requires on its output."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as s

    def tensor(name, scale, zp, buffer):
        t = s.TensorT()
        t.shape, t.type, t.buffer, t.name = list(shape), s.TensorType.INT8, buffer, name
        t.quantization = s.QuantizationParametersT()
        t.quantization.scale, t.quantization.zeroPoint = [scale], [zp]
        return t

    code = s.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = s.BuiltinOperator.SOFTMAX
    code.version = 1
    op = s.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0], [1]
    op.builtinOptionsType = s.BuiltinOptions.SoftmaxOptions
    op.builtinOptions = s.SoftmaxOptionsT()
    op.builtinOptions.beta = beta
    graph = s.SubGraphT()
    graph.tensors = [tensor("in", input_scale, input_zp, 1), tensor("out", 1 / 256, -128, 2)]
    graph.inputs, graph.outputs, graph.operators = [0], [1], [op]
    model = s.ModelT()
    model.version, model.operatorCodes, model.subgraphs = 3, [code], [graph]
    model.buffers = [s.BufferT(), s.BufferT(), s.BufferT()]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def softmax_inputs(n: int, size: int, depth: int, seed: int) -> np.ndarray:
    """Random rows plus the hard ones: all equal, one maximum, extremes, two-level rows."""
    rng = np.random.default_rng(seed)
    fixed = [np.full(size, -128), np.full(size, 127), np.zeros(size),
             np.where(np.arange(size) % depth == 0, 127, -128),
             np.where(np.arange(size) % 2 == 0, 127, 126)]
    random = [rng.integers(-128, 128, size) for _ in range(n // 2)]
    # Narrow rows: differences to the max within a few steps, where rounding matters most.
    narrow = [rng.integers(-4, 5, size) + rng.integers(-120, 120) for _ in range(n - n // 2)]
    return np.clip(np.array(fixed + random + narrow), -128, 127).astype(np.int8)


# (shape, input scale, input zero point, beta): LeNet-like logits and stress forms.
CASES = [
    ((1, 10), 0.1, 5, 1.0),
    ((1, 10), 0.0213, -25, 1.0),
    ((1, 10), 1.0, 0, 1.0),
    ((1, 10), 0.004, -128, 1.0),
    ((1, 10), 0.25, 3, 0.5),
    ((1, 37), 0.05, 0, 2.0),
    ((3, 7), 0.3, -10, 1.0),
    ((1, 1), 0.1, 0, 1.0),
    ((2, 256), 0.02, 0, 1.0),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-s{c[1]}-b{c[3]}")
def test_softmax_bit_exact(case, tmp_path):
    shape, scale, zp, beta = case
    data = softmax_model(shape, scale, zp, beta)
    path = tmp_path / "softmax.tflite"
    path.write_bytes(data)
    result = export(data, tmp_path / "out", measure_tflm=False, measure_code=False)
    lib = HostModel(build_shared_library(result.c_dir, tmp_path / "lib.so"))
    size = int(np.prod(shape))
    inputs = softmax_inputs(400, size, shape[-1], seed=size)
    got = lib.invoke_batch(inputs)
    ref = TflmModel(data)
    for i, x in enumerate(inputs):
        want = ref.invoke(x).reshape(-1)
        assert np.array_equal(got[i], want), f"input {i} {x[:12]}: {got[i][:12]} vs {want[:12]}"


def test_exp_matches_real_exponential():
    """The integer exp is gemmlowp's: within a few Q0.31 ulps of exp(), and 1.0 at 0."""
    assert exp_on_negative_values(0) == 2**31 - 1
    for real in (-0.01, -0.3, -1.0, -2.5, -7.0, -15.9):
        raw = round(real * 2**26)  # Q5.26
        approx = exp_on_negative_values(raw) / 2**31
        assert abs(approx - np.exp(raw / 2**26)) < 1e-6


def test_keras_model_ending_in_softmax(tmp_path):
    """A classifier with a softmax head, converted by TensorFlow, every tensor exact."""
    import keras

    from tests.codegen_models import convert_int8

    keras.utils.set_random_seed(5)
    L = keras.layers
    inputs = L.Input((8, 8, 2), batch_size=1)
    x = L.Conv2D(3, 3, activation="relu")(inputs)
    x = L.Flatten()(x)
    x = L.Dense(10, activation="softmax")(x)
    data = convert_int8(keras.Model(inputs, x), (8, 8, 2))
    path = tmp_path / "softmax_head.tflite"
    path.write_bytes(data)
    result = export(data, tmp_path / "out", measure_tflm=False, measure_code=False)
    assert any(layer["kernel"] == "softmax" for layer in result.report["layers"])
    lib = HostModel(build_shared_library(result.c_dir, tmp_path / "lib.so"))
    rng = np.random.default_rng(0)
    assert_matches_tflm(path, lib, rng.integers(-128, 128, (300, 128)).astype(np.int8))
