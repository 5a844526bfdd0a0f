/*
 * board_port.h - what a board folder (firmware_templates/boards/<template>/board.c)
 * provides to the common board code (board_common.c), which builds the board.h API
 * (receive ring, timeouts, counter, reset) on top of it.
 *
 * Every wait on a hardware flag is bounded (PORT_WAIT_LIMIT polls, far above any
 * datasheet's worst case), so a chip, or an emulator, whose flag never comes up does not
 * hang the firmware: the clock falls back to the reset clock and says so.
 */
#ifndef LENET_EDGE_BOARD_PORT_H
#define LENET_EDGE_BOARD_PORT_H

#include <stdint.h>

/* Polls of a hardware flag before giving up: >= 1,000,000 core cycles, i.e. 60 ms at
 * 16 MHz, against oscillator and PLL start-up times of at most a few hundred us. */
#define PORT_WAIT_LIMIT 250000u

/* Clock set-up results (INFO's clock_fault; names in board_common.c). */
#define CLOCK_OK 0u
#define CLOCK_FAULT_OSCILLATOR 1u /* oscillator never reported ready */
#define CLOCK_FAULT_FLASH 2u      /* flash wait states not accepted */
#define CLOCK_FAULT_PLL 3u        /* PLL never locked */
#define CLOCK_FAULT_SWITCH 4u     /* system clock switch never confirmed */

/* Set up the core clock towards CLOCK_HZ (flash wait states, PLL, bus dividers) with
 * bounded waits; on a fault, leave (or put back) the reset clock. Returns CLOCK_OK or
 * CLOCK_FAULT_*. */
uint32_t port_clock_init(void);

/* The core clock actually running, read back from the clock tree's registers. */
uint32_t port_clock_hz(void);

/* UART at `baud`, 8N1 (its divisor from the clock actually running, uart_divisor.h),
 * receive interrupt enabled in the peripheral and the NVIC; its interrupt handler
 * (port_uart_irq_handler, in the vector table) hands every received byte to
 * board_rx_push(). Returns the divisor register value and the baud rate it gives. */
struct port_uart_config {
    uint32_t divisor;
    uint32_t baud;
};
struct port_uart_config port_uart_init(uint32_t baud);
void port_uart_irq_handler(void);

/* Polled transmit: wait (bounded) for room, send one byte. Usable with interrupts off. */
void port_uart_putc(uint8_t byte);

/* Non-zero while the transmitter still shifts out data. */
int port_uart_tx_busy(void);

/* Called by the port's UART interrupt handler. */
void board_rx_push(uint8_t byte);
void board_rx_overrun(void);

/* Poll `reg & mask` until it equals `want`, at most PORT_WAIT_LIMIT times; 0 when it did. */
static inline int port_wait(volatile const uint32_t *reg, uint32_t mask, uint32_t want)
{
    for (uint32_t n = 0; n < PORT_WAIT_LIMIT; n++) {
        if ((*reg & mask) == want) {
            return 0;
        }
    }
    return -1;
}

#endif /* LENET_EDGE_BOARD_PORT_H */
