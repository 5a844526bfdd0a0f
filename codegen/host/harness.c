/* Host-only batch entry points around the generated library, for tests and `eval`.
 * Not part of the exported C library. */
#include <stdint.h>
#include <string.h>

#include "lenet5_model.h"

typedef struct {
    int8_t *dst;
    int32_t offset;
} trace_sink;

static void copy_to_sink(void *ctx, int tensor_index, const int8_t *data, int32_t size)
{
    trace_sink *sink = (trace_sink *)ctx;
    (void)tensor_index;
    memcpy(sink->dst + sink->offset, data, (size_t)size);
    sink->offset += size;
}

/* Runs n inputs; outputs are written back to back. Returns 0 or the first error. */
int lenet5_host_invoke_batch(const int8_t *inputs, int8_t *outputs, int32_t n)
{
    for (int32_t i = 0; i < n; ++i) {
        int rc = lenet5_invoke(inputs + (int64_t)i * LENET5_INPUT_SIZE,
                               outputs + (int64_t)i * LENET5_OUTPUT_SIZE);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* Like the batch above, and every traced tensor of input i is concatenated into
 * traces + i * trace_stride (trace_stride = sum of LENET5_TRACED_TENSOR_SIZES). */
int lenet5_host_trace_batch(const int8_t *inputs, int8_t *outputs, int8_t *traces,
                            int32_t trace_stride, int32_t n)
{
    for (int32_t i = 0; i < n; ++i) {
        trace_sink sink = {traces + (int64_t)i * trace_stride, 0};
        int rc = lenet5_invoke_traced(inputs + (int64_t)i * LENET5_INPUT_SIZE,
                                      outputs + (int64_t)i * LENET5_OUTPUT_SIZE,
                                      copy_to_sink, &sink);
        if (rc != 0) {
            return rc;
        }
        if (sink.offset != trace_stride) {
            return -2;
        }
    }
    return 0;
}

int lenet5_host_trace_layout(int32_t *indices, int32_t *sizes)
{
    static const int32_t idx[] = LENET5_TRACED_TENSOR_INDICES;
    static const int32_t sz[] = LENET5_TRACED_TENSOR_SIZES;
    for (int i = 0; i < LENET5_NUM_TRACED_TENSORS; ++i) {
        indices[i] = idx[i];
        sizes[i] = sz[i];
    }
    return LENET5_NUM_TRACED_TENSORS;
}

const int32_t lenet5_host_input_size = LENET5_INPUT_SIZE;
const int32_t lenet5_host_output_size = LENET5_OUTPUT_SIZE;
