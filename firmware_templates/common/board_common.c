/*
 * board_common.c - the board.h API built on a board port (board_port.h) and a time base
 * (timebase.h): interrupt-driven receive ring, counter calibration, timeouts, reset.
 */
#include "board.h"

#include "board_port.h"
#include "cortex_m.h"
#include "timebase.h"

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
    for (uint32_t n = 0; n < 16u * PORT_WAIT_LIMIT && port_uart_tx_busy(); n++) {
    }
}

/* ---- clock and counter, as measured at start-up ---- */

static const char *const clock_status_names[] = {
    "ok", "oscillator_timeout", "flash_timeout", "pll_timeout", "switch_timeout",
};

struct board_timing board_found;

/* Counter units per time-base tick; units_mul == 0: the counter is DWT CYCCNT. */
static uint32_t units_mul = 1u, units_div = 1u;
static uint32_t ticks_per_ms = 1u;

const struct board_timing *board_timing(void)
{
    return &board_found;
}

/* Calibration loops: four instructions per iteration either way. On silicon the LDM of
 * four words costs 5 cycles against 1 for an ADDS (about 1.7x the loop time on every
 * Cortex-M); an emulator that charges one step per instruction times them equally. */
#define CALIBRATION_ITERATIONS 125000u
#define CALIBRATION_INSTRUCTIONS (4u * CALIBRATION_ITERATIONS)

static void loop_alu(uint32_t n)
{
    /* GCC hands Thumb-1 inline assembly over in divided syntax: ask for unified. */
    __asm volatile(".syntax unified\n\t"
                   "1: adds r2, r2, #1\n\t"
                   "adds r3, r3, #1\n\t"
                   "subs %0, %0, #1\n\t"
                   "bne 1b"
                   : "+l"(n)::"r2", "r3", "cc");
}

static void loop_ldm(uint32_t n)
{
    uint32_t words[4] = {0u, 0u, 0u, 0u};
    uint32_t *p = words;
    __asm volatile(".syntax unified\n\t"
                   "1: ldm %1!, {r2, r3, r4, r5}\n\t"
                   "subs %1, #16\n\t"
                   "subs %0, %0, #1\n\t"
                   "bne 1b"
                   : "+l"(n), "+l"(p)
                   : "m"(words)
                   : "r2", "r3", "r4", "r5", "cc");
}

static uint32_t time_loop(void (*loop)(uint32_t))
{
    uint32_t start = timebase_raw();
    loop(CALIBRATION_ITERATIONS);
    return timebase_elapsed(start, timebase_raw());
}

static uint32_t gcd(uint32_t a, uint32_t b)
{
    while (b) {
        uint32_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Decide what the counter counts: DWT cycles if CYCCNT advances; else the time base,
 * in cycles on silicon or in guest instructions in an emulator (see board.h). */
static void counter_calibrate(uint32_t clock_fault)
{
    board_found.clock_fault = clock_fault;
    board_found.clock_status = clock_status_names[clock_fault < 5u ? clock_fault : 0u];
    board_found.clock_hz = port_clock_hz();
    timebase_start_free();
#if CPU_HAS_DWT
    DEMCR |= DEMCR_TRCENA;
    DWT_LAR = 0xC5ACCE55u; /* unlocks the DWT on the Cortex-M7; ignored elsewhere */
    DWT_CYCCNT = 0u;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;
    uint32_t cycles = DWT_CYCCNT;
    uint32_t alu = time_loop(loop_alu);
    cycles = DWT_CYCCNT - cycles;
    const int use_dwt = cycles >= CALIBRATION_ITERATIONS; /* QEMU 7.2: CYCCNT stays 0 */
#else
    uint32_t alu = time_loop(loop_alu);
    const int use_dwt = 0;
#endif
    uint32_t ldm = time_loop(loop_ldm);
    board_found.emulated = !use_dwt && (uint64_t)ldm * 4u < (uint64_t)alu * 5u;
    if (board_found.emulated) {
        /* Ticks per 1e9 guest instructions, to 100 kHz (the emulated clocks are whole
         * MHz; the measurement is good to about 0.03 %). */
        uint64_t hz = (uint64_t)alu * 1000000000u / CALIBRATION_INSTRUCTIONS;
        uint32_t units_100khz = (uint32_t)((hz + 50000u) / 100000u);
        board_found.timebase_hz = (units_100khz ? units_100khz : 1u) * 100000u;
        board_found.counter_unit = "guest_instructions";
        board_found.counter_hz = 1000000000u;
        uint32_t g = gcd(10000u, board_found.timebase_hz / 100000u);
        units_mul = 10000u / g;
        units_div = board_found.timebase_hz / 100000u / g;
    } else {
        board_found.timebase_hz = timebase_nominal_hz();
        board_found.counter_unit = "cycles";
        board_found.counter_hz = board_found.clock_hz;
        uint32_t g = gcd(board_found.clock_hz, board_found.timebase_hz);
        units_mul = board_found.clock_hz / g;
        units_div = board_found.timebase_hz / g;
    }
    board_found.counter_source = use_dwt ? "dwt" : timebase_name;
    board_found.counter_resolution = use_dwt ? 1u : (units_mul + units_div - 1u) / units_div;
    ticks_per_ms = board_found.timebase_hz / 1000u ? board_found.timebase_hz / 1000u : 1u;
    if (use_dwt) {
        units_mul = 0u;
    }
}

uint32_t board_counter_read(void)
{
#if CPU_HAS_DWT
    if (units_mul == 0u) {
        return DWT_CYCCNT;
    }
#endif
    /* Scaled on the 64-bit tick count so the 32-bit result wraps consistently. */
    return (uint32_t)(timebase_ticks() * units_mul / units_div);
}

uint32_t board_millis(void)
{
    return (uint32_t)(timebase_ticks() / ticks_per_ms);
}

int board_uart_read(uint32_t timeout_ms)
{
    int byte = board_uart_poll();
    if (byte >= 0 || timeout_ms == 0u) {
        return byte;
    }
    uint64_t start = timebase_ticks();
    uint64_t limit = (uint64_t)timeout_ms * ticks_per_ms;
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
        if (timeout_ms != BOARD_WAIT_FOREVER && timebase_ticks() - start >= limit) {
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
    counter_calibrate(port_clock_init());
    /* A 10 ms period keeps WFI wake-ups (timeouts) fine-grained while costing one short
     * interrupt per 10 ms (<0.01 % of the core). */
    timebase_start_periodic(board_found.timebase_hz / 100u);
    struct port_uart_config uart = port_uart_init(UART_BAUD);
    board_found.uart_divisor = uart.divisor;
    board_found.uart_baud_actual = uart.baud;
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
