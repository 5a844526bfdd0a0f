/*
 * board.h - the interface every board implements for the common firmware.
 *
 * The common main.c calls board_init() and then protocol_serve() (protocol.c).
 * Each board folder (firmware_templates/<board>/) provides board.c (this API),
 * startup.c (vector table, .data/.bss, FPU enable, fault handlers), a linker
 * script and the Makefile settings. board_config.h is rendered from the board
 * table (boards.py) and defines the constants below.
 *
 * Constants (from board_config.h):
 *   FIRMWARE_VERSION   "0.1.0"               lenet-edge version that rendered it
 *   BOARD_NAME         "qemu-mps2-an386"     board table key
 *   CPU_NAME           "cortex-m4"           core (as in -mcpu)
 *   CLOCK_HZ           25000000u             core clock after board_init()
 *   COUNTER_UNIT       "cycles" | "guest_instructions"
 *                      what one step of board_counter_read() means
 *   COUNTER_HZ         counter steps per second (CLOCK_HZ for "cycles";
 *                      1000000000 for QEMU under -icount shift=0, where one guest
 *                      instruction takes one virtual nanosecond)
 *   COUNTER_RESOLUTION step the counter actually moves by, rounded up to an integer
 *                      (1 with DWT CYCCNT; 40 on QEMU mps2: SysTick at 25 MHz ticks
 *                      once per 40 guest instructions; 32 on mps3-an547, 32 MHz: 31.25)
 *   UART_BAUD          115200 on real boards (QEMU ignores the baud rate)
 *   UART_RX_BUFFER     bytes the interrupt-driven receive ring holds; bytes that
 *                      arrive while it is full are dropped (counted)
 *
 * All functions are safe to call only after board_init() (except board_reset).
 * Nothing here allocates memory.
 */
#ifndef LENET_EDGE_BOARD_H
#define LENET_EDGE_BOARD_H

#include <stdint.h>

#include "board_config.h"

#define BOARD_WAIT_FOREVER 0xFFFFFFFFu

/* Clocks, UART (with its receive interrupt), cycle counter. Interrupts enabled on return. */
void board_init(void);

/* Blocking write: returns when every byte is in the UART transmitter. */
void board_uart_write(const uint8_t *data, uint32_t len);

/* Wait until the last byte has left the transmitter (e.g. before board_reset()). */
void board_uart_flush(void);

/* Non-blocking: next received byte (0..255), or -1 when none is waiting. */
int board_uart_poll(void);

/* Blocking read of one byte: 0..255, or -1 after timeout_ms milliseconds
 * (measured with the board counter; timeout_ms 0 = poll, BOARD_WAIT_FOREVER = no timeout). */
int board_uart_read(uint32_t timeout_ms);

/* Sleep until the next interrupt (a received byte, or the 10 ms tick at the latest),
 * unless *word no longer equals value (checked with interrupts off, so a change made by an
 * interrupt just before is never slept through). */
void board_sleep_unless_changed(const volatile uint32_t *word, uint32_t value);

/* Receive bytes dropped because the receive ring was full (or the UART overran). */
uint32_t board_uart_rx_dropped(void);

/* Free-running counter in COUNTER_UNIT, wraps at 2^32: elapsed = (uint32_t)(end - start). */
uint32_t board_counter_read(void);

/* Milliseconds since board_init(), derived from the counter (wraps at 2^32). */
uint32_t board_millis(void);

/* Deepest stack use since reset, in bytes: the stack is painted with BOARD_STACK_PAINT
 * at reset and this counts the words no longer painted (a lower bound if a frame
 * happened to store the paint value itself). */
#define BOARD_STACK_PAINT 0x5AC4C0DEu
uint32_t board_stack_used(void);

/* System reset through SCB->AIRCR (flushes the UART first). Does not return. */
void board_reset(void) __attribute__((noreturn));

#endif /* LENET_EDGE_BOARD_H */
