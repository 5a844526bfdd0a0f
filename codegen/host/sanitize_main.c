/* Sanitizer harness: reads n raw inputs from argv[1], runs traced and untraced invokes,
 * writes the outputs to argv[2]. Built with -fsanitize=address,undefined by the tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lenet5_model.h"

static int32_t traced_bytes;

static void count_trace(void *ctx, int tensor_index, const int8_t *data, int32_t size)
{
    int32_t checksum = 0;
    (void)tensor_index;
    for (int32_t i = 0; i < size; ++i) {
        checksum += data[i]; /* reads every byte, so ASan sees any bad range */
    }
    *(int32_t *)ctx += checksum;
    traced_bytes += size;
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
    int32_t checksum = 0;
    long n = 0;
    while (fread(input, 1, LENET5_INPUT_SIZE, in) == LENET5_INPUT_SIZE) {
        if (lenet5_invoke(input, output) != 0
            || lenet5_invoke_traced(input, again, count_trace, &checksum) != 0
            || memcmp(output, again, LENET5_OUTPUT_SIZE) != 0) {
            fprintf(stderr, "invoke failed or traced output differs at input %ld\n", n);
            return 1;
        }
        fwrite(output, 1, LENET5_OUTPUT_SIZE, out);
        ++n;
    }
    if (lenet5_invoke(NULL, output) != -1) {
        return 1;
    }
    printf("%ld inputs, %ld traced bytes, checksum %ld\n", n, (long)traced_bytes, (long)checksum);
    free(input);
    free(output);
    free(again);
    fclose(in);
    fclose(out);
    return 0;
}
