/* Sanitizer harness: reads n raw inputs from argv[1], runs traced and untraced invokes,
 * writes the outputs to argv[2]. Built with -fsanitize=address,undefined by the tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lenet5_model.h"

typedef struct {
    uint32_t checksum;
    long bytes;
} trace_stats;

static void count_trace(void *ctx, int tensor_index, const int8_t *data, int32_t size)
{
    trace_stats *stats = (trace_stats *)ctx;
    (void)tensor_index;
    for (int32_t i = 0; i < size; ++i) {
        stats->checksum += (uint8_t)data[i]; /* reads every byte: ASan checks the range */
    }
    stats->bytes += size;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s INPUTS.bin OUTPUTS.bin\n", argv[0]);
        return 2;
    }
    FILE *in = fopen(argv[1], "rb");
    FILE *out = fopen(argv[2], "wb");
    if (in == NULL || out == NULL) {
        return 2;
    }
    int8_t *input = malloc(LENET5_INPUT_SIZE);
    int8_t *output = malloc(LENET5_OUTPUT_SIZE);
    int8_t *again = malloc(LENET5_OUTPUT_SIZE);
    trace_stats stats = {0, 0};
    long n = 0;
    while (fread(input, 1, LENET5_INPUT_SIZE, in) == LENET5_INPUT_SIZE) {
        /* Every input traced; every 8th also untraced, which must give the same output. */
        if (lenet5_invoke_traced(input, output, count_trace, &stats) != 0
            || (n % 8 == 0 && (lenet5_invoke(input, again) != 0
                               || memcmp(output, again, LENET5_OUTPUT_SIZE) != 0))) {
            fprintf(stderr, "invoke failed or traced output differs at input %ld\n", n);
            return 1;
        }
        fwrite(output, 1, LENET5_OUTPUT_SIZE, out);
        ++n;
    }
    if (lenet5_invoke(NULL, output) != -1) {
        return 1;
    }
    printf("%ld inputs, %ld traced bytes, checksum %lu\n", n, stats.bytes,
           (unsigned long)stats.checksum);
    free(input);
    free(output);
    free(again);
    fclose(in);
    fclose(out);
    return 0;
}
