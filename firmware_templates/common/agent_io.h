/*
 * agent_io.h - the validation agent's I/O for this firmware, built on board.h.
 */
#ifndef LENET_EDGE_AGENT_IO_H
#define LENET_EDGE_AGENT_IO_H

#include "lenet_agent.h"

/* write, counter, milliseconds, stack, reset and INFO identity from board.h /
 * board_config.h; received bytes are pulled from the board's interrupt-driven ring. */
extern const struct lenet_agent_io firmware_agent_io;

#endif /* LENET_EDGE_AGENT_IO_H */
