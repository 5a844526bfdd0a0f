/*
 * board_port.h - what a board folder (firmware_templates/boards/<template>/board.c)
 * provides to the common board code (board_common.c), which builds the board.h API
 * (receive ring, timeouts, counter, reset) on top of it.
 */
#ifndef LENET_EDGE_BOARD_PORT_H
#define LENET_EDGE_BOARD_PORT_H

#include <stdint.h>

/* Bring the core clock to CLOCK_HZ (flash wait states, PLL, bus dividers). */
void port_clock_init(void);

/* UART at UART_BAUD, 8N1, receive interrupt enabled in the peripheral and the NVIC;
 * its interrupt handler (port_uart_irq_handler, in the vector table) hands every
 * received byte to board_rx_push(). */
void port_uart_init(void);
void port_uart_irq_handler(void);

/* Polled transmit: wait for room, send one byte. Usable with interrupts off (faults). */
void port_uart_putc(uint8_t byte);

/* Non-zero while the transmitter still shifts out data. */
int port_uart_tx_busy(void);

/* Called by the port's UART interrupt handler. */
void board_rx_push(uint8_t byte);
void board_rx_overrun(void);

#endif /* LENET_EDGE_BOARD_PORT_H */
