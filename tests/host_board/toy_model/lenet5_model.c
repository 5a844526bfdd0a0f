#include "lenet5_model.h"
static int8_t hidden[LENET5_INPUT_SIZE];
int lenet5_invoke_traced(const int8_t *input, int8_t *output, lenet5_trace_fn fn, void *ctx)
{
    for (int i = 0; i < LENET5_INPUT_SIZE; i++) hidden[i] = (int8_t)(uint8_t)((uint8_t)input[i] + 1u);
    if (fn) fn(ctx, 1, hidden, LENET5_INPUT_SIZE);
    for (int k = 0; k < LENET5_OUTPUT_SIZE; k++) {
        int32_t s = 0;
        for (int i = k * 78; i < (k + 1) * 78; i++) s += hidden[i];
        output[k] = (int8_t)(uint8_t)(uint32_t)s;
    }
    if (fn) fn(ctx, 2, output, LENET5_OUTPUT_SIZE);
    return 0;
}
int lenet5_invoke(const int8_t *input, int8_t *output) { return lenet5_invoke_traced(input, output, 0, 0); }
