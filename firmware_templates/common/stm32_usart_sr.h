/*
 * stm32_usart_sr.h - the USART of the STM32F1/F2/F4 families (status register SR, data
 * register DR; the F0/G0/L4 families have ISR/RDR/TDR instead). Included by exactly one
 * board.c, after it defines UART_BASE and UART_IRQ; provides the port's UART functions
 * (board_port.h) except port_uart_init's clock and pin set-up, which is the chip's.
 */
#ifndef LENET_EDGE_STM32_USART_SR_H
#define LENET_EDGE_STM32_USART_SR_H

#include "board_port.h"
#include "cortex_m.h"
#include "uart_divisor.h"

#define USART_SR REG32(UART_BASE + 0x00u)
#define USART_DR REG32(UART_BASE + 0x04u)
#define USART_BRR REG32(UART_BASE + 0x08u)
#define USART_CR1 REG32(UART_BASE + 0x0Cu)
#define SR_ORE (1u << 3)
#define SR_RXNE (1u << 5)
#define SR_TC (1u << 6)
#define SR_TXE (1u << 7)
#define CR1_RE (1u << 2)
#define CR1_TE (1u << 3)
#define CR1_RXNEIE (1u << 5)
#define CR1_UE (1u << 13)

/* 8N1 at `baud` from the USART's bus clock `pclk_hz`, receive interrupt on. */
static struct port_uart_config usart_start(uint32_t pclk_hz, uint32_t baud)
{
    struct port_uart_config config;
    config.divisor = stm32_usart_brr(pclk_hz, baud);
    config.baud = stm32_usart_baud(pclk_hz, config.divisor);
    USART_BRR = config.divisor;
    USART_CR1 = CR1_UE | CR1_TE | CR1_RE | CR1_RXNEIE;
    NVIC_ENABLE(UART_IRQ);
    return config;
}

void port_uart_irq_handler(void)
{
    uint32_t sr = USART_SR;
    if (sr & SR_ORE) {
        board_rx_overrun(); /* cleared by the SR-then-DR read below */
    }
    if (sr & (SR_RXNE | SR_ORE)) {
        uint8_t byte = (uint8_t)USART_DR;
        if (sr & SR_RXNE) {
            board_rx_push(byte);
        }
    }
}

void port_uart_putc(uint8_t byte)
{
    (void)port_wait(&USART_SR, SR_TXE, SR_TXE);
    USART_DR = byte;
}

int port_uart_tx_busy(void)
{
    return (USART_SR & SR_TC) == 0u;
}

#endif /* LENET_EDGE_STM32_USART_SR_H */
