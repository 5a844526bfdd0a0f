"""The numerics home: lenet_edge/quantmath.py, the C header codegen/templates/fixedpoint.h
and TFLM agree, and one input quantization (quantmath.quantize_input) holds everywhere.

Parity is checked against TFLM's own compiled functions (tflite_micro's runtime exports
tflite::micro::QuantizeMultiplier and MultiplyByQuantizedMultiplier), not against a copy.
"""

from __future__ import annotations

import ctypes
import struct
import subprocess

import numpy as np
import pytest

from lenet_edge import quantmath
from lenet_edge.codegen.emit import FIXEDPOINT_H
from lenet_edge.codegen.host_build import WARNINGS, _compiler

INT32_MIN, INT32_MAX = quantmath.INT32_MIN, quantmath.INT32_MAX
EDGES = [INT32_MIN, INT32_MIN + 1, -(1 << 30) - 1, -(1 << 30), -65536, -129, -128, -2, -1, 0,
         1, 2, 127, 128, 65535, 1 << 30, (1 << 30) + 1, INT32_MAX - 1, INT32_MAX]


def _tflm_function(symbol: str, argtypes):
    """A function of TFLM's compiled runtime, by its C++ symbol."""
    from tflite_micro.python.tflite_micro import _runtime

    lib = ctypes.CDLL(_runtime.__file__)
    try:
        fn = getattr(lib, symbol)
    except AttributeError:
        pytest.fail(f"tflite_micro's runtime no longer exports {symbol}")
    fn.argtypes = argtypes
    return fn


@pytest.fixture(scope="module")
def fixedpoint_lib(tmp_path_factory):
    """fixedpoint.h compiled on its own (strict warnings), behind exported wrappers."""
    work = tmp_path_factory.mktemp("fixedpoint")
    source = work / "fixedpoint_test.c"
    source.write_text(f'''#include "{FIXEDPOINT_H}"
int32_t t_srdhm(int32_t a, int32_t b) {{ return lenet5_sat_rounding_doubling_high_mul(a, b); }}
int32_t t_rdpot(int32_t x, int e) {{ return lenet5_rounding_divide_by_pot(x, e); }}
int32_t t_requantize(int32_t acc, int32_t m, int s) {{ return lenet5_requantize(acc, m, s); }}
int32_t t_high_halves(int32_t a, int32_t m) {{ return lenet5_high_mul_halves(a, m); }}
int32_t t_shift_left(int32_t x, int s) {{ return lenet5_saturating_shift_left(x, s); }}
int32_t t_clamp(int32_t v, int32_t lo, int32_t hi) {{ return lenet5_clamp_int8(v, lo, hi); }}
''')
    lib = work / "libfixedpoint.so"
    subprocess.run([_compiler(), *WARNINGS, "-O2", "-fPIC", "-shared",
                    str(source), "-o", str(lib)], check=True, capture_output=True, text=True)
    dll = ctypes.CDLL(str(lib))
    i32 = ctypes.c_int32
    for name, args in (("t_srdhm", [i32, i32]), ("t_rdpot", [i32, ctypes.c_int]),
                       ("t_requantize", [i32, i32, ctypes.c_int]), ("t_high_halves", [i32, i32]),
                       ("t_shift_left", [i32, ctypes.c_int]), ("t_clamp", [i32, i32, i32])):
        getattr(dll, name).argtypes = args
        getattr(dll, name).restype = i32
    return dll


def _values(n: int = 300, seed: int = 7) -> list[int]:
    rng = np.random.default_rng(seed)
    return EDGES + [int(v) for v in rng.integers(INT32_MIN, INT32_MAX, n, endpoint=True)]


def test_fixedpoint_header_matches_python(fixedpoint_lib):
    lib = fixedpoint_lib
    values = _values()
    for a in values:
        for b in EDGES + values[-20:]:
            assert lib.t_srdhm(a, b) == quantmath.sat_rounding_doubling_high_mul(a, b), (a, b)
        for e in range(0, 32):
            assert lib.t_rdpot(a, e) == quantmath.rounding_divide_by_pot(a, e), (a, e)
        for s in range(1, 31):
            assert lib.t_shift_left(a, s) == quantmath.saturating_shift_left(a, s), (a, s)
        for lo, hi in ((-128, 127), (-128, 0), (-5, 6)):
            assert lib.t_clamp(a, lo, hi) == max(lo, min(hi, a))


def test_high_multiply_from_halves_is_the_64_bit_one(fixedpoint_lib):
    # ARMv6-M's requantization (no long multiply there) builds the high multiply from
    # 16-bit halves; it must equal the 64-bit one for every multiplier >= 0.
    rng = np.random.default_rng(11)
    multipliers = [0, 1, 0xFFFF, 0x10000, 1 << 30, (1 << 30) + 0xFFFF, 0x7FFF0000, INT32_MAX]
    multipliers += [int(v) for v in rng.integers(0, INT32_MAX, 40, endpoint=True)]
    values = _values(300) + [v for k in range(31) for v in (1 << k, -(1 << k), (1 << k) - 1)]
    for a in values:
        for m in multipliers:
            assert fixedpoint_lib.t_high_halves(a, m) == \
                quantmath.sat_rounding_doubling_high_mul(a, m), (a, m)


def test_requantize_matches_python_and_tflm(fixedpoint_lib):
    """The C lenet5_requantize, quantmath.requantize and TFLM's MultiplyByQuantizedMultiplier,
    for the multipliers the generator emits (0 or [2^30, 2^31)) and shifts -31..+8 (the
    left shift only where TFLM's int32 product does not overflow)."""
    tflm = _tflm_function("_ZN6tflite5micro29MultiplyByQuantizedMultiplierEiii",
                          [ctypes.c_int32, ctypes.c_int32, ctypes.c_int])
    tflm.restype = ctypes.c_int32
    multipliers = [0, 1 << 30, (1 << 30) + 1, 1518500250, INT32_MAX]
    checked = 0
    for acc in _values(200):
        for m in multipliers:
            for shift in range(-31, 9):
                c = fixedpoint_lib.t_requantize(acc, m, shift)
                assert c == quantmath.requantize(acc, m, shift), (acc, m, shift)
                if shift <= 0 or INT32_MIN <= acc * (1 << shift) <= INT32_MAX:
                    assert c == tflm(acc, m, shift), (acc, m, shift)
                    checked += 1
    assert checked > 20000


def test_quantize_multiplier_matches_tflm():
    """quantmath.quantize_multiplier against TFLM's QuantizeMultiplier on edge reals (0,
    powers of two, values that round up to 2^31, underflow) and 3000 spread over 16 decades."""
    tflm = _tflm_function("_ZN6tflite5micro18QuantizeMultiplierEdPiS1_",
                          [ctypes.c_double, ctypes.POINTER(ctypes.c_int32),
                           ctypes.POINTER(ctypes.c_int)])
    rng = np.random.default_rng(3)
    reals = [0.0, 1.0, 0.5, 0.25, 2.0, 1 - 2 ** -40, 1 - 2 ** -53, 0.9999999997, 2 ** -31,
             2 ** -32, 2 ** -33, 2 ** -40, 1e-12, 0.003921568859368563 * 0.01 / 0.05]
    reals += [float(v) for v in 10 ** rng.uniform(-12, 4, 3000)]
    for real in reals:
        m, s = ctypes.c_int32(), ctypes.c_int()
        tflm(real, ctypes.byref(m), ctypes.byref(s))
        assert quantmath.quantize_multiplier(real) == (m.value, s.value), real


def test_quantize_input_rounds_halves_away_from_zero():
    q = quantmath.quantize_input([0.5, 1.5, 2.5, -0.5, -1.5, 0.49999997, 400.0, -400.0], 1.0, 0)
    assert q.tolist() == [1, 2, 3, -1, -2, 0, 127, -128]
    # The bundled models' 1/255 and -128: exactly pixel - 128.
    pixels = np.arange(256, dtype=np.uint8)
    assert quantmath.quantize_pixels(pixels, np.float32(1 / 255), -128).tolist() == \
        list(range(-128, 128))


SCALE_2_255 = float(np.float32(2 / 255))


def _numpy_half_even(scale: float, zero_point: int) -> np.ndarray:
    """The rule host/ used before (np.round of the float32 quotient): halves to even."""
    real = quantmath.pixels_to_real(np.arange(256))
    return np.clip(np.round(real / np.float32(scale)) + zero_point, -128, 127).astype(np.int8)


def test_quantize_input_is_tflms_quantize_kernel():
    """A float-input model (the converter keeps its QUANTIZE op) calibrated to input scale
    2/255: TFLM's QUANTIZE of every pixel value p/255 is quantize_input's result."""
    pytest.importorskip("tensorflow")
    import keras

    from lenet_edge.quantize.tflm import TflmModel
    from tests.codegen_models import convert_int8

    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 1), batch_size=1)
    model = keras.Model(inp, keras.layers.Conv2D(2, 3)(inp))
    rng = np.random.default_rng(0)
    rep = [rng.random((16, 16, 1), dtype=np.float32) * 2 for _ in range(8)]
    for x in rep:
        x[0, 0, 0], x[0, 1, 0] = 0.0, 2.0  # calibrated range [0, 2]: scale 2/255, zp -128
    data = convert_int8(model, (16, 16, 1), representative=rep, float_io=True)
    tflm = TflmModel(data, preserve_all_tensors=True)
    quantize_op = tflm.ops[0]
    import tflite

    assert quantize_op.opcode == tflite.BuiltinOperator.QUANTIZE
    pixels = quantmath.pixels_to_real(np.arange(256))
    tflm.invoke(pixels.reshape(1, 16, 16, 1))
    got = tflm.tensor(quantize_op.outputs[0]).reshape(-1)
    scale, zero_point = SCALE_2_255, -128
    expected = quantmath.quantize_input(pixels, scale, zero_point)
    np.testing.assert_array_equal(got, expected)
    # TFLite's own reference kernel (the interpreter's BUILTIN_REF resolver) agrees.
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    ref = Interpreter(model_content=data, experimental_preserve_all_tensors=True,
                      experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    ref.allocate_tensors()
    ref.set_tensor(ref.get_input_details()[0]["index"], pixels.reshape(1, 16, 16, 1))
    ref.invoke()
    np.testing.assert_array_equal(ref.get_tensor(quantize_op.outputs[0]).reshape(-1), expected)
    assert int(np.sum(_numpy_half_even(scale, zero_point) != expected)) == 33


def _with_input_scale(model: bytes, scale: float) -> bytes:
    """The model with its input tensor's quantization scale replaced in place."""
    import tflite

    from tests.tamper import Q_SCALE, _vector

    graph = tflite.Model.GetRootAsModel(model, 0).Subgraphs(0)
    quant = graph.Tensors(graph.Inputs(0)).Quantization()
    pos, length = _vector(quant, Q_SCALE)
    assert length == 1
    data = bytearray(model)
    struct.pack_into("<f", data, pos, scale)
    return bytes(data)


def test_input_scale_2_255_agrees_end_to_end(tmp_path):
    """Where the old rules disagreed (33 of 256 pixel values at scale 2/255), the generated
    C's lenet5_quantize_pixels, quantmath, the host's model_inputs and TFLM now agree: the C
    library run on its own quantized pixels gives TFLM's logits for the host's inputs."""
    from lenet_edge.bundled import bundled_model
    from lenet_edge.codegen.export import export
    from lenet_edge.codegen.host_build import HostModel, build_shared_library
    from lenet_edge.quantize.evaluate import input_spec, model_inputs
    from lenet_edge.quantize.tflm import TflmModel

    model = _with_input_scale(bundled_model("modern", "tflite").read_bytes(), SCALE_2_255)
    assert input_spec(model)[1:] == (SCALE_2_255, -128)
    result = export(model, tmp_path / "export", measure_tflm=False, measure_code=False)
    assert "lenet5_pixel_table" in (result.c_dir / "lenet5_weights.h").read_text() + \
        (result.c_dir / "lenet5_model.c").read_text()
    lib = HostModel(build_shared_library(result.c_dir, tmp_path / "lib.so"))
    # Every pixel value in each position: 784 = 3 * 256 + 16.
    ramp = np.resize(np.arange(256, dtype=np.uint8), (4, 28, 28))
    for k in range(1, 4):
        ramp[k] = np.roll(ramp[0], 37 * k)
    host = model_inputs(model, ramp)
    c_inputs = np.stack([lib.quantize_pixels(p) for p in ramp])
    np.testing.assert_array_equal(c_inputs, host)
    expected = quantmath.quantize_pixels(np.arange(256), SCALE_2_255, -128)
    np.testing.assert_array_equal(lib.quantize_pixels(ramp[0])[:256], expected)
    assert np.sum(_numpy_half_even(SCALE_2_255, -128) != expected) == 33
    tflm = TflmModel(model)
    np.testing.assert_array_equal(lib.invoke_batch(c_inputs),
                                  np.stack([tflm.invoke(x).reshape(-1) for x in host]))
