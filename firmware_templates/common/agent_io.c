/*
 * agent_io.c - the validation agent's I/O interface (lenet_agent.h) for this firmware:
 * every function maps to board.h, and board_info_keys() adds the board's own INFO keys.
 */
#include "agent_io.h"

#include "board.h"
#include "board_port.h"

struct lenet_agent firmware_agent;

/* Called by the board's UART receive interrupt (replaces board_common.c's weak version,
 * which fills the board's own ring): the byte goes straight into the agent's ring. */
void board_rx_push(uint8_t byte)
{
    lenet_agent_rx_push(&firmware_agent, byte);
}

static void io_write(void *ctx, const uint8_t *data, uint32_t len)
{
    (void)ctx;
    board_uart_write(data, len);
}

static uint32_t io_counter(void *ctx)
{
    (void)ctx;
    return board_counter_read();
}

static uint32_t io_millis(void *ctx)
{
    (void)ctx;
    return board_millis();
}

static uint32_t io_stack_used(void *ctx)
{
    (void)ctx;
    return board_stack_used();
}

static uint32_t io_rx_dropped(void *ctx)
{
    (void)ctx;
    return board_uart_rx_dropped();
}

static void io_reset(void *ctx)
{
    (void)ctx;
    board_uart_flush();
    board_reset();
}

/* INFO keys of this board beyond the protocol's (PROTOCOL.md lists them): what
 * board_init() found (board.h, struct board_timing) - the clock actually running, how
 * the counter was calibrated, the UART divisor computed from that clock. The table is
 * constant (flash); the agent reads the values where board_init() left them. */
static const struct lenet_agent_key board_keys[] = {
    {"clock_hz", &board_found.clock_hz, 0},
    {"counter_unit", 0, &board_found.counter_unit},
    {"counter_hz", &board_found.counter_hz, 0},
    {"counter_resolution", &board_found.counter_resolution, 0},
    {"clock_fault", &board_found.clock_fault, 0},
    {"clock_status", 0, &board_found.clock_status},
    {"counter_source", 0, &board_found.counter_source},
    {"timebase_hz", &board_found.timebase_hz, 0},
    {"emulated", &board_found.emulated, 0},
    {"uart_divisor", &board_found.uart_divisor, 0},
    {"uart_baud_actual", &board_found.uart_baud_actual, 0},
};

/* The clock and the counter's unit and rate are what board_init() measured: the INFO keys
 * above report them (replacing the fields here, which stay constant). */
const struct lenet_agent_io firmware_agent_io = {
    .ctx = 0,
    .read = 0, /* bytes are pushed by the receive interrupt */
    .write = io_write,
    .counter = io_counter,
    .counter_unit = "unknown",
    .counter_hz = 0,
    .counter_resolution = 0,
    .millis = io_millis,
    .stack_used = io_stack_used,
    .rx_dropped = io_rx_dropped,
    .reset = io_reset,
    .info_keys = 0,
    .keys = board_keys,
    .key_count = sizeof board_keys / sizeof board_keys[0],
    .firmware = FIRMWARE_VERSION,
    .board = BOARD_NAME,
    .cpu = CPU_NAME,
    .clock_hz = 0,
    .uart_baud = UART_BAUD,
    .rx_buffer_extra = 0,
};
