/*
 * stm32_prescalers.h - decoding the AHB (HPRE) and APB (PPRE) prescaler fields, which
 * every STM32 family encodes the same way. For reading back the clock actually running.
 */
#ifndef LENET_EDGE_STM32_PRESCALERS_H
#define LENET_EDGE_STM32_PRESCALERS_H

#include <stdint.h>

/* HPRE: 0xxx = /1, 1000 = /2, ... 1011 = /16, 1100 = /64 ... 1111 = /512. */
static inline uint32_t stm32_ahb_hz(uint32_t sysclk_hz, uint32_t hpre)
{
    static const uint8_t shift[8] = {1, 2, 3, 4, 6, 7, 8, 9};
    return (hpre & 8u) ? sysclk_hz >> shift[hpre & 7u] : sysclk_hz;
}

/* PPRE: 0xx = /1, 100 = /2, ... 111 = /16. */
static inline uint32_t stm32_apb_hz(uint32_t ahb_hz, uint32_t ppre)
{
    return (ppre & 4u) ? ahb_hz >> ((ppre & 3u) + 1u) : ahb_hz;
}

#endif /* LENET_EDGE_STM32_PRESCALERS_H */
