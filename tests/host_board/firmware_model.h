/* firmware_model.h for the host build (tests): the firmware's main.c runs lenet5. */
#ifndef LENET_EDGE_FIRMWARE_MODEL_H
#define LENET_EDGE_FIRMWARE_MODEL_H

#include "lenet_agent.h"
#include "lenet5_model.h"

#define FIRMWARE_MODEL_INPUT_SIZE LENET5_INPUT_SIZE
#define FIRMWARE_MODEL_OUTPUT_SIZE LENET5_OUTPUT_SIZE
#define FIRMWARE_AGENT_MODEL(input, output) LENET_AGENT_MODEL(lenet5, LENET5, input, output)
#define FIRMWARE_AGENT_MODEL_IN_ARENA(output) LENET_AGENT_MODEL_IN_ARENA(lenet5, LENET5, output)
#define FIRMWARE_MODEL_INPUT_BUFFER() lenet5_input_buffer()

#endif /* LENET_EDGE_FIRMWARE_MODEL_H */
