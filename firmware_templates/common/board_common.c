/*
 * board_common.c - the board.h API built on a board port (board_port.h):
 * interrupt-driven receive ring, SysTick time base, cycle counter, timeouts, reset.
 */
#include "board.h"

#include "board_port.h"
#include "cortex_m.h"

/* ---- receive ring (filled by the UART interrupt, drained by the main loop) ---- */

#if (UART_RX_BUFFER & (UART_RX_BUFFER - 1u)) != 0
#error "UART_RX_BUFFER must be a power of two"
#endif

static volatile uint8_t rx_ring[UART_RX_BUFFER];
static volatile uint32_t rx_head; /* written by the interrupt only */
static volatile uint32_t rx_tail; /* written by the main loop only */
static volatile uint32_t rx_dropped;

/* Weak: the firmware's agent_io.c replaces it to put bytes straight into the validation
 * agent's ring (then this ring, and board_uart_poll/read, are unused and not linked). */
__attribute__((weak)) void board_rx_push(uint8_t byte)
{
    uint32_t head = rx_head;
    if (head - rx_tail >= UART_RX_BUFFER) {
        rx_dropped++;
        return;
    }
    rx_ring[head & (UART_RX_BUFFER - 1u)] = byte;
    rx_head = head + 1u;
}

void board_rx_overrun(void)
{
    rx_dropped++;
}

uint32_t board_uart_rx_dropped(void)
{
    return rx_dropped;
}

int board_uart_poll(void)
{
    uint32_t tail = rx_tail;
    if (tail == rx_head) {
        return -1;
    }
    uint8_t byte = rx_ring[tail & (UART_RX_BUFFER - 1u)];
    rx_tail = tail + 1u;
    return byte;
}

void board_uart_write(const uint8_t *data, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++) {
        port_uart_putc(data[i]);
    }
}

void board_uart_flush(void)
{
    while (port_uart_tx_busy()) {
    }
}

/* ---- SysTick time base: 64-bit tick count from 24-bit wraps ---- */

/* A 10 ms period keeps WFI wake-ups (timeouts) fine-grained while costing one short
 * interrupt per 10 ms (<0.01 % of the core). */
#define SYSTICK_PERIOD (CLOCK_HZ / 100u)

static volatile uint64_t systick_base; /* ticks at the start of the current period */

void SysTick_Handler(void)
{
    systick_base += SYSTICK_PERIOD;
}

static uint64_t systick_ticks(void)
{
    uint32_t primask = irq_save();
    uint64_t base = systick_base;
    uint32_t val = SYST_CVR;
    if (SCB_ICSR & SCB_ICSR_PENDSTSET) {
        /* Wrapped but not yet serviced (interrupts off): count the period ourselves. */
        val = SYST_CVR;
        base += SYSTICK_PERIOD;
    }
    irq_restore(primask);
    return base + (SYSTICK_PERIOD - 1u - val);
}

static void counter_init(void)
{
    SYST_RVR = SYSTICK_PERIOD - 1u;
    SYST_CVR = 0u;
    SYST_CSR = SYST_CSR_CLKSOURCE_CPU | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
#if COUNTER_USES_DWT
    DEMCR |= DEMCR_TRCENA;
    DWT_LAR = 0xC5ACCE55u; /* unlocks the DWT on the Cortex-M7; ignored elsewhere */
    DWT_CYCCNT = 0u;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;
#endif
}

uint32_t board_counter_read(void)
{
#if COUNTER_USES_DWT
    return DWT_CYCCNT;
#else
    /* Scaled on the 64-bit tick count so the 32-bit result wraps consistently. */
    return (uint32_t)(systick_ticks() * COUNTER_MUL / COUNTER_DIV);
#endif
}

uint32_t board_millis(void)
{
    return (uint32_t)(systick_ticks() / (CLOCK_HZ / 1000u));
}

int board_uart_read(uint32_t timeout_ms)
{
    int byte = board_uart_poll();
    if (byte >= 0 || timeout_ms == 0u) {
        return byte;
    }
    uint64_t start = systick_ticks();
    uint64_t limit = (uint64_t)timeout_ms * (CLOCK_HZ / 1000u);
    for (;;) {
        /* Sleep until the next interrupt (a received byte or the 10 ms tick). Checking
         * with interrupts off closes the race with a byte arriving just before WFI;
         * WFI still wakes on a pending interrupt. On QEMU this lets the host CPU idle. */
        uint32_t primask = irq_save();
        if (rx_tail == rx_head) {
            __asm volatile("wfi" ::: "memory");
        }
        irq_restore(primask);
        byte = board_uart_poll();
        if (byte >= 0) {
            return byte;
        }
        if (timeout_ms != BOARD_WAIT_FOREVER && systick_ticks() - start >= limit) {
            return -1;
        }
    }
}

void board_sleep_unless_changed(const volatile uint32_t *word, uint32_t value)
{
    /* Checked with interrupts off: an interrupt that changed *word just before cannot be
     * slept through; WFI still wakes on the pending interrupt. */
    uint32_t primask = irq_save();
    if (*word == value) {
        __asm volatile("wfi" ::: "memory");
    }
    irq_restore(primask);
}

void board_reset(void)
{
    board_uart_flush();
    barrier_dsb_isb();
    SCB_AIRCR = SCB_AIRCR_RESET;
    barrier_dsb_isb();
    for (;;) {
    }
}

void board_init(void)
{
    port_clock_init();
    counter_init();
    port_uart_init();
    __asm volatile("cpsie i" ::: "memory");
}

/* ---- stack high-water mark (paint left by reset_c in startup.c) ---- */

extern uint32_t _sstack, _estack;

uint32_t board_stack_used(void)
{
    const uint32_t *p = &_sstack;
    while (p < &_estack && *p == BOARD_STACK_PAINT) {
        ++p;
    }
    return (uint32_t)((uintptr_t)&_estack - (uintptr_t)p);
}
