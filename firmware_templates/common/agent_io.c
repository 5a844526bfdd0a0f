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

/* INFO keys of this board beyond the protocol's (PROTOCOL.md lists those): add lines with
 * lenet_agent_info_uint / _text / _int. Called twice per INFO: print the same both times. */
static void board_info_keys(void *ctx, struct lenet_agent_info *info)
{
    (void)ctx;
    (void)info;
}

const struct lenet_agent_io firmware_agent_io = {
    .ctx = 0,
    .read = 0, /* bytes are pushed by the receive interrupt */
    .write = io_write,
    .counter = io_counter,
    .counter_unit = COUNTER_UNIT,
    .counter_hz = COUNTER_HZ,
    .counter_resolution = COUNTER_RESOLUTION,
    .millis = io_millis,
    .stack_used = io_stack_used,
    .rx_dropped = io_rx_dropped,
    .reset = io_reset,
    .info_keys = board_info_keys,
    .firmware = FIRMWARE_VERSION,
    .board = BOARD_NAME,
    .cpu = CPU_NAME,
    .clock_hz = CLOCK_HZ,
    .uart_baud = UART_BAUD,
    .rx_buffer_extra = 0,
};
