/* lenet-edge's fixed-point helpers: TFLM's integer arithmetic, one fixed header (no
 * template logic). The code generator pastes it verbatim into NAME_model.c (the `lenet5`
 * prefix is renamed with the rest of the library); tests/test_quantmath.py compiles it on
 * its own and checks it against lenet_edge/quantmath.py and TFLM's own functions. */
#ifndef LENET5_FIXEDPOINT_H
#define LENET5_FIXEDPOINT_H

#include <stdint.h>

/* TFLM's requantization (gemmlowp): a rounding doubling high multiply, then a rounding
 * right shift. Two roundings, exactly as the reference kernels do. Signed right shifts are
 * arithmetic on every compiler this targets (GCC, Clang, Arm). */
static inline int32_t lenet5_sat_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    /* TFLM: (a*b + (a*b >= 0 ? 2^30 : 1 - 2^30)) / 2^31, truncating. For a negative
     * product, truncating (p + 1 - 2^30) / 2^31 equals flooring (p + 2^30) / 2^31, so
     * both signs are one arithmetic shift. */
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 30)) >> 31);
}

static inline int32_t lenet5_rounding_divide_by_pot(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* (a * m + 2^30) >> 31 for m >= 0 (the high multiply below) in 32-bit arithmetic, for
 * ARMv6-M: it has no long multiply and GCC calls a 64 x 64 library multiply. With
 * a = ah * 2^16 + al and m = mh * 2^16 + ml: a * m + 2^30 = ah*mh * 2^32 + (s1 + s2) * 2^16
 * + (al*ml mod 2^16), s1 = ah*ml (within int32), s2 = al*mh + (al*ml >> 16) + 2^14
 * (< 2^31). The low 16 bits never reach bit 31, so the floor by 2^31 is 2*ah*mh +
 * floor((s1 + s2) / 2^15), summed as halves plus their carry; the total is the int32
 * result, added modulo 2^32. */
static inline int32_t lenet5_high_mul_halves(int32_t a, int32_t m)
{
    const int32_t ah = a >> 16;
    const uint32_t al = (uint32_t)a & 0xffffu;
    const uint32_t mh = (uint32_t)m >> 16;
    const uint32_t ml = (uint32_t)m & 0xffffu;
    const int32_t s1 = ah * (int32_t)ml;
    const uint32_t s2 = al * mh + ((al * ml) >> 16) + (1u << 14);
    const uint32_t carry = (((uint32_t)s1 & 0x7fffu) + (s2 & 0x7fffu)) >> 15;
    return (int32_t)(2u * (uint32_t)(ah * (int32_t)mh) + (uint32_t)(s1 >> 15) + (s2 >> 15) + carry);
}

static inline int32_t lenet5_requantize(int32_t acc, int32_t multiplier, int shift)
{
    const int left = shift > 0 ? shift : 0;
    const int right = shift > 0 ? 0 : -shift;
    /* TFLM multiplies by 1 << left in int32; do it unsigned so wrapping is defined. */
    const int32_t scaled = (int32_t)((uint32_t)acc << left);
    /* The generator's multipliers are never negative, so the high multiply cannot
     * saturate (that needs both factors INT32_MIN): its saturation test is skipped. */
#if defined(__ARM_ARCH_6M__)
    const int32_t high = lenet5_high_mul_halves(scaled, multiplier);
#else
    const int32_t high = (int32_t)(((int64_t)scaled * multiplier + ((int64_t)1 << 30)) >> 31);
#endif
    return lenet5_rounding_divide_by_pot(high, right);
}

/* lenet5_requantize for a right shift of 1..31 (every shift of the layer <= -1, known at
 * export): the same two roundings. Rounding half away from zero is x >> right plus the
 * carry of (x's low bits + half - (x < 0)), which lies in [0, 2^(right+1)): no compare,
 * no overflow. */
static inline int32_t lenet5_requantize_right(int32_t acc, int32_t multiplier, int right)
{
#if defined(__ARM_ARCH_6M__)
    /* Thumb-1 (Cortex-M0/M0+): the general form compiles to fewer instructions there. */
    return lenet5_requantize(acc, multiplier, -right);
#else
    const int32_t high = (int32_t)(((int64_t)acc * multiplier + ((int64_t)1 << 30)) >> 31);
    const uint32_t unit = (uint32_t)1 << right;
    const uint32_t low = ((uint32_t)high & (unit - 1u)) + (unit >> 1) - (uint32_t)(high < 0);
    return (high >> right) + (int32_t)(low >> right);
#endif
}

/* gemmlowp's SaturatingRoundingMultiplyByPOT for a positive exponent. */
static inline int32_t lenet5_saturating_shift_left(int32_t x, int shift)
{
    if (x > (INT32_MAX >> shift)) {
        return INT32_MAX;
    }
    if (x < (INT32_MIN >> shift)) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << shift);
}

/* lenet5_clamp_int8(v, -128, 127): one SSAT where the core has it (GCC writes the
 * compares as branches). */
static inline int8_t lenet5_sat_int8(int32_t v)
{
#if defined(__GNUC__) && defined(__ARM_FEATURE_SAT)
    int32_t r;
    __asm__("ssat %0, #8, %1" : "=r"(r) : "r"(v));
    return (int8_t)r;
#else
    return (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
#endif
}

static inline int8_t lenet5_clamp_int8(int32_t v, int32_t lo, int32_t hi)
{
    return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

#endif /* LENET5_FIXEDPOINT_H */
