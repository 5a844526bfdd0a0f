"""TFLite's integer arithmetic, the one Python home of it: the fixed-point parameters
computed exactly as TFLM computes them at Prepare time, the gemmlowp integer helpers the
kernels run (twins of codegen/templates/fixedpoint.h, tested against it), and the input
quantization (float -> int8) every stage uses.

float32 arithmetic is reproduced with numpy float32 where TFLM uses float, and Python
floats (IEEE doubles) where TFLM uses double, so every multiplier and shift is the
same integer TFLM derives.
"""

from __future__ import annotations

import math

import numpy as np

INT8_MIN, INT8_MAX = -128, 127
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1

__all__ = [
    "INT8_MIN", "INT8_MAX", "INT32_MIN", "INT32_MAX", "ADD_LEFT_SHIFT", "PIXEL_SCALE",
    "round_half_away", "quantize_multiplier", "conv_multipliers", "fc_per_tensor_multiplier",
    "activation_range", "padding_offsets", "output_size", "wrap32",
    "sat_rounding_doubling_high_mul", "rounding_divide_by_pot", "saturating_shift_left",
    "requantize", "add_multipliers", "add_scaled_input", "mean_multiplier",
    "quantize_input", "pixels_to_real", "quantize_pixels",
]


def round_half_away(x: float) -> int:
    """std::round / TfLiteRound: halves go away from zero."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: real = m * 2^(shift - 31), m in [2^30, 2^31)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = round_half_away(q * float(1 << 31))
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return int(q_fixed), int(shift)


def conv_multipliers(s_in: float, filter_scales: tuple[float, ...], s_out: float,
                     channels: int) -> list[tuple[int, int]]:
    """Per-channel conv and per-channel FC: (double)s_in * (double)s_w[c] / (double)s_out."""
    scales = filter_scales if len(filter_scales) > 1 else filter_scales * channels
    return [quantize_multiplier(s_in * s_w / s_out) for s_w in scales]


def fc_per_tensor_multiplier(s_in: float, s_w: float, s_out: float) -> tuple[int, int]:
    """Per-tensor FC (GetQuantizedConvolutionMultipler): the product is taken in float32."""
    product = float(np.float32(s_in) * np.float32(s_w))
    return quantize_multiplier(product / s_out)


def activation_range(activation: str, scale: float, zero_point: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for int8 outputs (f / scale in float32)."""
    def q(f: float) -> int:
        return zero_point + round_half_away(float(np.float32(f) / np.float32(scale)))

    lo, hi = INT8_MIN, INT8_MAX
    if activation == "RELU":
        lo = max(lo, q(0.0))
    elif activation == "RELU6":
        lo, hi = max(lo, q(0.0)), min(hi, q(6.0))
    elif activation == "RELU_N1_TO_1":
        lo, hi = max(lo, q(-1.0)), min(hi, q(1.0))
    elif activation != "NONE":
        raise ValueError(activation)
    return lo, hi


def padding_offsets(padding: str, stride: int, dilation: int, in_size: int, filter_size: int,
                    out_size: int) -> int:
    """TFLite's ComputePaddingHeightWidth (the leading pad; SAME only)."""
    if padding != "SAME":
        return 0
    effective = (filter_size - 1) * dilation + 1
    pad = ((out_size - 1) * stride + effective - in_size) // 2
    return max(pad, 0)


def output_size(padding: str, stride: int, dilation: int, in_size: int, filter_size: int) -> int:
    effective = (filter_size - 1) * dilation + 1
    if padding == "SAME":
        return (in_size + stride - 1) // stride
    return (in_size + stride - effective) // stride


def sat_rounding_doubling_high_mul(a: int, b: int) -> int:
    """gemmlowp's SaturatingRoundingDoublingHighMul on int32 values."""
    if a == b == -2**31:
        return 2**31 - 1
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    total = ab + nudge
    return abs(total) // (1 << 31) * (1 if total >= 0 else -1)  # C++ division truncates


def rounding_divide_by_pot(x: int, exponent: int) -> int:
    """gemmlowp's RoundingDivideByPOT (round half away from zero)."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def wrap32(x: int) -> int:
    """x modulo 2^32 as a signed int32 (what int32 addition does in C)."""
    return (x + (1 << 31)) % (1 << 32) - (1 << 31)


def saturating_shift_left(x: int, shift: int) -> int:
    """gemmlowp's SaturatingRoundingMultiplyByPOT for a positive exponent."""
    return max(INT32_MIN, min(INT32_MAX, x << shift))


def requantize(acc: int, multiplier: int, shift: int) -> int:
    """TFLM's MultiplyByQuantizedMultiplier (the C lenet5_requantize): acc << max(shift, 0)
    in int32, the rounding doubling high multiply, then a rounding right shift."""
    scaled = wrap32(acc * (1 << max(shift, 0)))
    return rounding_divide_by_pot(sat_rounding_doubling_high_mul(scaled, multiplier),
                                  max(-shift, 0))


ADD_LEFT_SHIFT = 20  # TFLM's int8 ADD: inputs are shifted left by 20 before rescaling


def add_multipliers(s1: float, s2: float, s_out: float) -> tuple[tuple[int, int], ...]:
    """TFLM's int8 ADD (CalculateOpDataAdd): per-input and output (multiplier, shift), each
    from QuantizeMultiplierSmallerThanOneExp of doubles; the shifts are <= 0."""
    twice_max = 2 * float(max(np.float32(s1), np.float32(s2)))
    return (quantize_multiplier(s1 / twice_max), quantize_multiplier(s2 / twice_max),
            quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * s_out)))


def add_scaled_input(value: int, offset: int, multiplier: int, shift: int) -> int:
    """One ADD input after its rescaling: (value + offset) << 20, times its multiplier."""
    shifted = (value + offset) * (1 << ADD_LEFT_SHIFT)
    return rounding_divide_by_pot(sat_rounding_doubling_high_mul(shifted, multiplier), -shift)


def mean_multiplier(s_in: float, s_out: float, count: int) -> tuple[int, int]:
    """TFLM's int8 MEAN over ``count`` elements: QuantizeMultiplier((double)s_in / s_out),
    then the division folded into it (shift = min(floor(log2 count), 32, 31 + shift),
    multiplier = (multiplier << shift) / count), applied to sum(x - zero point)."""
    multiplier, shift = quantize_multiplier(s_in / s_out)
    extra = min(count.bit_length() - 1, 32, 31 + shift)
    return (multiplier << extra) // count, shift - extra



PIXEL_SCALE = 255.0  # the LeNet models take pixel / 255 (real inputs in [0, 1])


def quantize_input(real, scale: float, zero_point: int) -> np.ndarray:
    """Float model inputs -> int8, the one rule every stage uses (host, reports, the C
    library's lenet5_quantize_pixels table).

    The rule of TFLite's reference QUANTIZE kernel, which TFLM's quantize kernel shares
    (tensorflow/lite/kernels/internal/reference/quantize.h, AffineQuantize):
    q = zero_point + (int32)TfLiteRound(x / (float)scale), clamped to int8; TfLiteRound is
    std::round on the float32 quotient, so halves go away from zero. Measured on a
    float-input model with input scale 2/255 and all 256 pixel values p/255: TFLM and the
    TFLite interpreter's BUILTIN_REF kernels give exactly this; the interpreter's optimized
    kernel and XNNPACK multiply by 1/scale and round halves to even, 34 values differ
    (measured with ai-edge-litert 2.3.0; numpy's np.round of the quotient, the rule host/
    used before, differs on 33; tests/test_quantmath.py checks TFLM and BUILTIN_REF).
    TFLM is the oracle, as for every other op.
    """
    x = np.asarray(real, dtype=np.float32) / np.float32(scale)
    # trunc(x ± 1/2) in double is std::round of a float32 exactly (no double rounding).
    rounded = np.trunc(x.astype(np.float64) + np.copysign(0.5, x))
    return np.clip(rounded + zero_point, INT8_MIN, INT8_MAX).astype(np.int8)


def pixels_to_real(pixels) -> np.ndarray:
    """uint8 pixels -> the float input the LeNet models were trained on: pixel / 255 in
    float32 (what `train` feeds Keras)."""
    return np.asarray(pixels).astype(np.float32) / np.float32(PIXEL_SCALE)


def quantize_pixels(pixels, scale: float, zero_point: int) -> np.ndarray:
    """uint8 pixels -> int8 inputs, same shape: pixel / 255 quantized by quantize_input."""
    return quantize_input(pixels_to_real(pixels), scale, zero_point)
