/*
 * agent_io.h - the validation agent's I/O for this firmware, built on board.h.
 */
#ifndef LENET_EDGE_AGENT_IO_H
#define LENET_EDGE_AGENT_IO_H

#include "lenet_agent.h"

/* write, counter, milliseconds, stack, reset and INFO identity from board.h /
 * board_config.h; the counter's unit and rate and the clock from board_timing(), set by
 * firmware_agent_io_init() after board_init(). */
extern struct lenet_agent_io firmware_agent_io;
void firmware_agent_io_init(void);

/* The firmware's agent: the UART receive interrupt pushes every byte into its ring
 * (agent_io.c's board_rx_push), so received bytes are buffered once. */
extern struct lenet_agent firmware_agent;

#endif /* LENET_EDGE_AGENT_IO_H */
