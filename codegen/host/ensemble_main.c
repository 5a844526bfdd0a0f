/* Host runner of a generated ensemble library (codegen/ensemble.py): reads int8 inputs of
 * argv[1] bytes each from stdin, writes the ensemble's output bytes (NAME_OUTPUT_SIZE) per
 * input to stdout. Built by codegen.ensemble.build_host_runner (ENSEMBLE_HEADER,
 * ENSEMBLE_PREFIX, ENSEMBLE_UPPER name the library). The input goes in the library's own
 * buffer (inside the arena the nets share), which must still hold it afterwards (exit 6). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include ENSEMBLE_HEADER

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define INVOKE CAT(ENSEMBLE_PREFIX, _invoke)
#define INPUT_BUFFER CAT(ENSEMBLE_PREFIX, _input_buffer)
#define OUTPUT_SIZE CAT(ENSEMBLE_UPPER, _OUTPUT_SIZE)
#define INPUT_SIZE CAT(ENSEMBLE_UPPER, _INPUT_SIZE)

int main(int argc, char **argv)
{
    static int8_t output[OUTPUT_SIZE];
    static int8_t copy[INPUT_SIZE];
    if (argc != 2)
        return 2;
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
        if (INVOKE(input, output) != 0)
            return 4;
        if (memcmp(copy, input, (size_t)size) != 0)
            return 6;
        if (fwrite(output, 1, sizeof output, stdout) != sizeof output)
            return 5;
    }
}
