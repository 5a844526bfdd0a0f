/* A toy stand-in for the generated library (same API), for protocol tests only:
 * tensor 1 = input + 1 (wrapping), tensor 2 (output) = sum of each 1/10 of tensor 1. */
#ifndef LENET5_MODEL_H
#define LENET5_MODEL_H
#include <stdint.h>
#define LENET5_INPUT_SIZE 784
#define LENET5_OUTPUT_SIZE 10
#define LENET5_INPUT_SCALE 0.003921568859368563f
#define LENET5_INPUT_ZERO_POINT (-128)
#define LENET5_OUTPUT_SCALE 0.00390625f
#define LENET5_OUTPUT_ZERO_POINT (-128)
#define LENET5_ARENA_BYTES 1568
#define LENET5_MODEL_HASH "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define LENET5_NUM_TRACED_TENSORS 2
typedef void (*lenet5_trace_fn)(void *ctx, int tensor_index, const int8_t *data, int32_t size);
int lenet5_invoke(const int8_t *input, int8_t *output);
int lenet5_invoke_traced(const int8_t *input, int8_t *output, lenet5_trace_fn fn, void *ctx);
#endif
