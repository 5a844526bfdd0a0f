/*
 * uart_divisor.h - the baud-rate divisor of each UART family the firmware drives, as the
 * reference manuals define it, and the baud rate that divisor really gives. Pure
 * arithmetic (no registers), so the tests compile it on the host and compare it with
 * its Python twin (firmware_templates/uart.py) and the manuals' formulas.
 */
#ifndef LENET_EDGE_UART_DIVISOR_H
#define LENET_EDGE_UART_DIVISOR_H

#include <stdint.h>

/* STM32 USART, 16x oversampling (OVER8 = 0): baud = f_ck / USARTDIV with BRR holding
 * USARTDIV in 12.4 fixed point, i.e. BRR = f_ck / baud, rounded; 16 <= BRR <= 65535. */
static inline uint32_t stm32_usart_brr(uint32_t clock_hz, uint32_t baud)
{
    uint32_t brr = (uint32_t)(((uint64_t)clock_hz + baud / 2u) / baud);
    return brr < 16u ? 16u : brr > 0xFFFFu ? 0xFFFFu : brr;
}

static inline uint32_t stm32_usart_baud(uint32_t clock_hz, uint32_t brr)
{
    return (uint32_t)(((uint64_t)clock_hz + brr / 2u) / brr);
}

/* Arm CMSDK APB UART: baud = PCLK / BAUDDIV, BAUDDIV >= 16 (20 bits). */
static inline uint32_t cmsdk_bauddiv(uint32_t clock_hz, uint32_t baud)
{
    uint32_t div = (uint32_t)(((uint64_t)clock_hz + baud / 2u) / baud);
    return div < 16u ? 16u : div > 0xFFFFFu ? 0xFFFFFu : div;
}

static inline uint32_t cmsdk_baud(uint32_t clock_hz, uint32_t div)
{
    return (uint32_t)(((uint64_t)clock_hz + div / 2u) / div);
}

/* nRF51 UART: BAUDRATE = baud * 2^32 / 16 MHz, in steps of 0x1000 (the reference
 * manual's table: 115200 -> 0x01D7E000); the UART runs at BAUDRATE * 16 MHz / 2^32. */
static inline uint32_t nrf51_baudrate(uint32_t baud)
{
    uint64_t value = ((uint64_t)baud << 32) / 16000000u;
    return (uint32_t)((value + 0x800u) & ~(uint64_t)0xFFFu);
}

static inline uint32_t nrf51_baud(uint32_t baudrate)
{
    return (uint32_t)(((uint64_t)baudrate * 16000000u + (1ull << 31)) >> 32);
}

#endif /* LENET_EDGE_UART_DIVISOR_H */
