/* Host runner of a generated ensemble library (codegen/ensemble.py): reads int8 inputs of
 * argv[1] bytes each from stdin, writes the ensemble's output bytes (NAME_OUTPUT_SIZE) per
 * input to stdout. With argv[2] = "trace" it runs NAME_invoke_traced and writes, before
 * each input's output, one record per traced tensor (int32 tensor index, int32 size, the
 * size bytes; native byte order) and an end record (-1, 0). Built by
 * codegen.ensemble.build_host_runner (ENSEMBLE_HEADER, ENSEMBLE_PREFIX, ENSEMBLE_UPPER name
 * the library). The input goes in the library's own buffer (inside the arena the nets
 * share), which must still hold it afterwards (exit 6); NAME_scores must give the output's
 * scores and nets run (exit 7). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include ENSEMBLE_HEADER

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define INVOKE CAT(ENSEMBLE_PREFIX, _invoke)
#define INVOKE_TRACED CAT(ENSEMBLE_PREFIX, _invoke_traced)
#define SCORES CAT(ENSEMBLE_PREFIX, _scores)
#define INPUT_BUFFER CAT(ENSEMBLE_PREFIX, _input_buffer)
#define CLASSES CAT(ENSEMBLE_UPPER, _CLASSES)
#define OUTPUT_SIZE CAT(ENSEMBLE_UPPER, _OUTPUT_SIZE)
#define INPUT_SIZE CAT(ENSEMBLE_UPPER, _INPUT_SIZE)

static int write_failed;

static void put_i32(int32_t v)
{
    if (fwrite(&v, sizeof v, 1, stdout) != 1)
        write_failed = 1;
}

static void trace(void *ctx, int tensor_index, const int8_t *data, int32_t size)
{
    (void)ctx;
    put_i32((int32_t)tensor_index);
    put_i32(size);
    if (size > 0 && fwrite(data, 1, (size_t)size, stdout) != (size_t)size)
        write_failed = 1;
}

int main(int argc, char **argv)
{
    static int8_t output[OUTPUT_SIZE];
    static int8_t copy[INPUT_SIZE];
    if (argc != 2 && !(argc == 3 && strcmp(argv[2], "trace") == 0))
        return 2;
    const int traced = argc == 3;
    const long size = strtol(argv[1], NULL, 10);
    int8_t *input = INPUT_BUFFER();
    if (size != INPUT_SIZE) /* the library's buffer holds exactly one input */
        return 2;
    for (;;) {
        const size_t got = fread(input, 1, (size_t)size, stdin);
        if (got == 0)
            return 0;
        if (got != (size_t)size)
            return 3;
        memcpy(copy, input, (size_t)size);
        if ((traced ? INVOKE_TRACED(input, output, trace, NULL) : INVOKE(input, output)) != 0)
            return 4;
        if (memcmp(copy, input, (size_t)size) != 0)
            return 6;
        int32_t scores[CLASSES];
        if (SCORES(input, scores) != output[4 * CLASSES])
            return 7;
        for (int c = 0; c < CLASSES; c++) {
            uint32_t u = 0;
            for (int b = 0; b < 4; b++)
                u |= (uint32_t)(uint8_t)output[4 * c + b] << (8 * b);
            if ((int32_t)u != scores[c])
                return 7;
        }
        if (traced) {
            put_i32(-1);
            put_i32(0);
        }
        if (write_failed || fwrite(output, 1, sizeof output, stdout) != sizeof output)
            return 5;
    }
}
