"""TFLM's int8 SOFTMAX, precomputed at export time.

TFLM (reference_ops::Softmax with gemmlowp fixed point) computes, per row, for each input
x: d = x - max(row); if d >= diff_min, e = exp_on_negative_values(rescale(d)) in Q0.31;
the row sum of e/2^12 (Q12.19) is inverted with gemmlowp's Newton-Raphson reciprocal, and
each output is a rounding shift of reciprocal * e. For int8 input d takes only 256
values, so the exponentials become a 256-entry table computed here with the same integer
arithmetic; the reciprocal and the final rounding run on the device (ops/softmax.c.j2).
The integer helpers (lenet_edge/quantmath.py) mirror gemmlowp's fixedpoint.h bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

from lenet_edge.quantmath import INT32_MAX, quantize_multiplier, rounding_divide_by_pot
from lenet_edge.quantmath import sat_rounding_doubling_high_mul as srdhm
from lenet_edge.quantmath import saturating_shift_left as _saturating_shift_left
from lenet_edge.quantmath import wrap32 as _wrap32

SCALED_DIFF_INTEGER_BITS = 5  # TFLM's kScaledDiffIntegerBits for int8 softmax
ACCUMULATION_INTEGER_BITS = 12  # TFLM's kAccumulationIntegerBits


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a: int) -> int:
    """gemmlowp: exp(a) for a in [-1/4, 0) in Q0.31, by a Taylor series around -1/8."""
    constant_term = 1895147668  # exp(-1/8) in Q0.31
    constant_1_over_3 = 715827883
    x = _wrap32(a + (1 << 28))  # a + 1/8
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(_wrap32(srdhm(_wrap32(x4_over_4 + x3), constant_1_over_3) + x2), 1)
    return _wrap32(constant_term + srdhm(constant_term, _wrap32(x + poly)))


# (exponent, exp(-2^exponent) in Q0.31) for gemmlowp's barrel shifter.
_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
           (2, 39332535), (3, 720401), (4, 242))


def exp_on_negative_values(a: int, integer_bits: int = SCALED_DIFF_INTEGER_BITS) -> int:
    """gemmlowp exp_on_negative_values: a in Q(integer_bits).(31-integer_bits), a <= 0;
    returns exp(a) in Q0.31."""
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    mask = one_quarter - 1
    a_mod_quarter_minus_one_quarter = _wrap32((a & mask) - one_quarter)
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        _saturating_shift_left(a_mod_quarter_minus_one_quarter, integer_bits))
    remainder = _wrap32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _BARREL:
        if integer_bits > exponent and remainder & (1 << (fractional_bits + exponent)):
            result = srdhm(result, multiplier)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))
        if a < clamp:
            result = 0
    return INT32_MAX if a == 0 else result


def softmax_params(beta: float, input_scale: float) -> tuple[int, int, int]:
    """(input_multiplier, input_left_shift, diff_min) as TFLM's CalculateSoftmaxParams.

    PreprocessSoftmaxScaling caps the real multiplier at 2^31 - 1 (double rounding build)
    and CalculateInputRadius bounds the differences that still contribute.
    """
    real = min(float(beta) * float(input_scale) * (1 << (31 - SCALED_DIFF_INTEGER_BITS)),
               (1 << 31) - 1.0)
    multiplier, left_shift = quantize_multiplier(real)
    if left_shift < 0:
        raise ValueError("softmax input scale * beta too small for TFLM's int8 softmax")
    max_input_rescaled = (1.0 * ((1 << SCALED_DIFF_INTEGER_BITS) - 1)
                          * (1 << (31 - SCALED_DIFF_INTEGER_BITS)) / (1 << left_shift))
    diff_min = -int(math.floor(max_input_rescaled))
    return multiplier, left_shift, diff_min


def exp_table(beta: float, input_scale: float) -> np.ndarray:
    """exp(beta * s_in * (x - max)) in Q0.31 for d = max - x = 0..255, exactly as TFLM,
    with 0 where x - max < diff_min (TFLM skips those: they add 0 and output -128)."""
    multiplier, left_shift, diff_min = softmax_params(beta, input_scale)
    table = np.zeros(256, dtype=np.int32)
    for d in range(256):
        diff = -d
        if diff < diff_min:
            continue
        # MultiplyByQuantizedMultiplierGreaterThanOne: SRDHM(diff * 2^left_shift, m).
        rescaled = srdhm(_wrap32(diff * (1 << left_shift)), multiplier)
        table[d] = exp_on_negative_values(rescaled)
    return table
