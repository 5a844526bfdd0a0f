/*
 * main.c - common firmware entry: bring up the board, greet, serve the host protocol with
 * the validation agent (lenet_agent.h). The agent is a library: this loop is one way to
 * run it (your own firmware would call lenet_agent_poll() from its loop or a task).
 */
#include "agent_io.h"
#include "board.h"
#include "firmware_model.h"

/* RAM: the receive ring (the UART interrupt writes into it, frames are checked in place
 * there), the output, and the agent's state; the input is decoded into the model's arena. */
static int8_t output[FIRMWARE_MODEL_OUTPUT_SIZE];
static uint8_t rx_ring[LENET_AGENT_RX_BYTES(FIRMWARE_MODEL_INPUT_SIZE)];
static const struct lenet_agent_model model = FIRMWARE_AGENT_MODEL_IN_ARENA(output);

int main(void)
{
    board_init();
    (void)lenet_agent_init(&firmware_agent, &firmware_agent_io, &model, rx_ring, sizeof rx_ring);
    /* Human-readable for a terminal; the host resynchronises over it. */
    lenet_agent_banner(&firmware_agent);
    for (;;) {
        const uint32_t head = firmware_agent.rx_head;
        if (!lenet_agent_poll(&firmware_agent)) {
            /* Nothing to answer: sleep until the next interrupt (a received byte, or the
             * 10 ms tick, so that a frame whose bytes stopped arriving still times out),
             * unless a byte arrived while poll() ran. */
            board_sleep_unless_changed(&firmware_agent.rx_head, head);
        }
    }
}
