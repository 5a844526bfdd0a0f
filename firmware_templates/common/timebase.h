/*
 * timebase.h - the free-running tick source under the board counter and timeouts.
 *
 * common/timebase.c drives SysTick on the core clock; a chip without SysTick (nRF51)
 * brings its own timebase.c in its board folder. board_common.c calibrates it at start-up
 * (what a tick is worth is measured, not assumed) and builds board.h's counter, millis
 * and timeouts on it.
 */
#ifndef LENET_EDGE_TIMEBASE_H
#define LENET_EDGE_TIMEBASE_H

#include <stdint.h>

/* Name of the source, for INFO ("systick", "timer0"). */
extern const char timebase_name[];

/* Ticks per second on silicon (from the running clock; board_common.c measures the rate
 * instead when it finds an emulator). */
uint32_t timebase_nominal_hz(void);

/* Start counting with no interrupt, for calibration. timebase_raw() then returns a tick
 * count that may wrap: elapsed = timebase_elapsed(start, end), valid over at least
 * 2^24 ticks. */
void timebase_start_free(void);
uint32_t timebase_raw(void);
uint32_t timebase_elapsed(uint32_t start, uint32_t end);

/* Run with an interrupt every `period` ticks (wakes WFI for timeouts) and keep a 64-bit
 * tick count from then on. */
void timebase_start_periodic(uint32_t period);
uint64_t timebase_ticks(void);

#endif /* LENET_EDGE_TIMEBASE_H */
