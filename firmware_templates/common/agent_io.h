/*
 * agent_io.h - the validation agent's I/O for this firmware, built on board.h.
 */
#ifndef LENET_EDGE_AGENT_IO_H
#define LENET_EDGE_AGENT_IO_H

#include "lenet_agent.h"

/* write, counter, milliseconds, stack, reset and INFO identity from board.h /
 * board_config.h; the clock and the counter's unit and rate through INFO keys that read
 * what board_init() measured (board_found). */
extern const struct lenet_agent_io firmware_agent_io;

/* The firmware's agent: the UART receive interrupt pushes every byte into its ring
 * (agent_io.c's board_rx_push), so received bytes are buffered once. */
extern struct lenet_agent firmware_agent;

#endif /* LENET_EDGE_AGENT_IO_H */
