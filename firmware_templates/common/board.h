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
 *   CLOCK_HZ           25000000u             core clock the board code sets up (what
 *                      actually runs is board_timing()->clock_hz)
 *   UART_BAUD          115200 on real boards (QEMU ignores the baud rate)
 *   UART_RX_BUFFER     bytes the interrupt-driven receive ring holds; bytes that
 *                      arrive while it is full are dropped (counted)
 *
 * What the counter counts is measured at start-up (board_timing()), not assumed:
 * DWT CYCCNT when it advances (cycles), else the board's time base (SysTick, or
 * TIMER0 on the nRF51). Two loops of the same instruction count but different cycle
 * costs on silicon tell an emulator apart: under QEMU every instruction takes the same
 * time, so the counter is converted to guest instructions at the tick rate measured
 * against them.
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

/* What the clock and counter turned out to be at start-up (see above). */
struct board_timing {
    uint32_t clock_hz;          /* core clock running, read back from the clock tree */
    uint32_t clock_fault;       /* CLOCK_OK (0) or CLOCK_FAULT_* (board_port.h) */
    const char *clock_status;   /* "ok", "oscillator_timeout", ... */
    const char *counter_source; /* "dwt", "systick", "timer0" */
    const char *counter_unit;   /* "cycles", or "guest_instructions" in an emulator */
    uint32_t counter_hz;        /* counter units per second (1e9 for guest instructions:
                                   QEMU -icount shift=0 runs one per virtual ns) */
    uint32_t counter_resolution; /* units per tick of the source, rounded up */
    uint32_t timebase_hz;       /* ticks per second of the source (measured in an emulator) */
    uint32_t emulated;          /* 1: all instructions took the same time */
    uint32_t uart_divisor;      /* the divisor register value computed from clock_hz */
    uint32_t uart_baud_actual;  /* the baud rate that divisor gives at clock_hz */
};
const struct board_timing *board_timing(void);
/* The same struct as an object (for constant tables of pointers into it, e.g. agent_io.c's
 * INFO keys): written by board_init() only, read-only after it. */
extern struct board_timing board_found;

/* Free-running counter in board_timing()->counter_unit, wraps at 2^32:
 * elapsed = (uint32_t)(end - start). */
uint32_t board_counter_read(void);

/* Milliseconds since board_init(), from the time base (wraps at 2^32). */
uint32_t board_millis(void);

/* Deepest stack use since reset, in bytes: the stack is painted with BOARD_STACK_PAINT
 * at reset and this counts the words no longer painted (a lower bound if a frame
 * happened to store the paint value itself). */
#define BOARD_STACK_PAINT 0x5AC4C0DEu
uint32_t board_stack_used(void);

/* System reset through SCB->AIRCR (flushes the UART first). Does not return. */
void board_reset(void) __attribute__((noreturn));

#endif /* LENET_EDGE_BOARD_H */
