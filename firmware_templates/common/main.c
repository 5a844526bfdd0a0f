/*
 * main.c - common firmware entry: bring up the board, greet, serve the host protocol with
 * the validation agent (lenet_agent.h). The agent is a library: this loop is one way to
 * run it (your own firmware would call lenet_agent_poll() from its loop or a task).
 */
#include "agent_io.h"
#include "board.h"
#include "firmware_model.h"

static int8_t input[FIRMWARE_MODEL_INPUT_SIZE];
static int8_t output[FIRMWARE_MODEL_OUTPUT_SIZE];
static uint8_t rx_ring[LENET_AGENT_RX_BYTES(FIRMWARE_MODEL_INPUT_SIZE)];
static const struct lenet_agent_model model = FIRMWARE_AGENT_MODEL(input, output);
static struct lenet_agent agent;

int main(void)
{
    board_init();
    (void)lenet_agent_init(&agent, &firmware_agent_io, &model, rx_ring, sizeof rx_ring);
    /* Human-readable for a terminal; the host resynchronises over it. */
    lenet_agent_banner(&agent);
    for (;;) {
        if (!lenet_agent_poll(&agent)) {
            /* Nothing to answer: sleep until a byte arrives (or 10 ms, so that a frame
             * whose bytes stopped arriving still times out). */
            const int byte = board_uart_read(10u);
            if (byte >= 0) lenet_agent_rx_push(&agent, (uint8_t)byte);
        }
    }
}
