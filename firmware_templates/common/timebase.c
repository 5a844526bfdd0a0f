/*
 * timebase.c - SysTick on the core clock as the board time base (see timebase.h).
 */
#include "timebase.h"

#include "board_port.h"
#include "cortex_m.h"

const char timebase_name[] = "systick";

#define SYST_MAX 0x00FFFFFFu /* 24-bit counter */

static uint32_t period_ticks;
static volatile uint64_t period_base; /* ticks at the start of the current period */

uint32_t timebase_nominal_hz(void)
{
    return port_clock_hz(); /* CLKSOURCE = processor clock */
}

void timebase_start_free(void)
{
    SYST_CSR = 0u;
    SYST_RVR = SYST_MAX;
    SYST_CVR = 0u;
    SYST_CSR = SYST_CSR_CLKSOURCE_CPU | SYST_CSR_ENABLE;
}

uint32_t timebase_raw(void)
{
    return SYST_CVR; /* counts down */
}

uint32_t timebase_elapsed(uint32_t start, uint32_t end)
{
    return (start - end) & SYST_MAX;
}

void SysTick_Handler(void)
{
    period_base += period_ticks;
}

void timebase_start_periodic(uint32_t period)
{
    if (period - 1u > SYST_MAX) {
        period = SYST_MAX + 1u; /* a clock too fast for 10 ms in 24 bits: shorter period */
    }
    SYST_CSR = 0u;
    period_ticks = period;
    period_base = 0u;
    SYST_RVR = period - 1u;
    SYST_CVR = 0u;
    SYST_CSR = SYST_CSR_CLKSOURCE_CPU | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
}

uint64_t timebase_ticks(void)
{
    static uint64_t last; /* the latest count returned */
    uint32_t primask = irq_save();
    uint64_t base = period_base;
    uint32_t val = SYST_CVR;
    if (SCB_ICSR & SCB_ICSR_PENDSTSET) {
        /* Wrapped but not yet serviced (interrupts off): count the period ourselves. */
        val = SYST_CVR;
        base += period_ticks;
    }
    uint64_t ticks = base + (period_ticks - 1u - val);
    if (ticks < last) {
        /* The counter reloaded before its wrap showed as pending (QEMU under -icount
         * raises the pending bit a little after the reload): one period not yet counted. */
        ticks += period_ticks;
    }
    last = ticks;
    irq_restore(primask);
    return ticks;
}
