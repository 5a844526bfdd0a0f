/*
 * fuzz_model.c - libFuzzer harness for the generated C library (lenet5_model.h): any
 * int8 input through lenet5_invoke and lenet5_invoke_traced, under ASan and UBSan.
 *
 * Checks what must hold for every input: invoke succeeds, the traced run gives the same
 * output, as many tensors are traced as the library declares (each fully readable),
 * argmax is in range; lenet5_quantize_pixels reads any pixels. Short inputs are tiled.
 * Built by tests/fuzzing.py with -fsanitize=fuzzer,address,undefined.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lenet5_model.h"

static int traced_count;

static void on_trace(void *ctx, int tensor_index, const int8_t *data, int32_t size)
{
    volatile int8_t sink = 0;
    (void)ctx;
    if (tensor_index < 0 || size <= 0) abort();
    for (int32_t i = 0; i < size; i++) sink ^= data[i]; /* every byte must be readable */
    (void)sink;
    traced_count++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int8_t input[LENET5_INPUT_SIZE];
    static int8_t output[LENET5_OUTPUT_SIZE], traced[LENET5_OUTPUT_SIZE];
    static uint8_t pixels[LENET5_INPUT_SIZE];
    if (size == 0) return 0;
    for (size_t i = 0; i < LENET5_INPUT_SIZE; i++) {
        input[i] = (int8_t)data[i % size];
        pixels[i] = data[i % size];
    }
    if (lenet5_invoke(input, output) != 0) abort();
    traced_count = 0;
    if (lenet5_invoke_traced(input, traced, on_trace, NULL) != 0) abort();
    if (traced_count != LENET5_NUM_TRACED_TENSORS) abort();
    if (memcmp(output, traced, sizeof output) != 0) abort();
    const int k = lenet5_argmax(output);
    if (k < 0 || k >= LENET5_OUTPUT_SIZE) abort();
    lenet5_quantize_pixels(pixels, input);
    return 0;
}
