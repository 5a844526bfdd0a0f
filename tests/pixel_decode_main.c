/*
 * pixel_decode_main.c - the agent's input decoder on the host, for the lossless tests
 * (tests/test_pixel_coder.py): reads records "zero_point i8, size u16, len u16, bytes[len]"
 * from stdin until EOF, decodes each with lenet_agent_decode_input_zp and writes
 * "status u8, out[size]" for each to stdout.
 */
#include <stdio.h>
#include <stdint.h>

#include "lenet_agent.h"

int main(void)
{
    static uint8_t in[70000];
    static int8_t out[65536];
    uint8_t head[5];
    while (fread(head, 1, 5, stdin) == 5) {
        const int32_t zp = (int8_t)head[0];
        const uint32_t size = (uint32_t)head[1] | ((uint32_t)head[2] << 8);
        const uint32_t len = (uint32_t)head[3] | ((uint32_t)head[4] << 8);
        if (fread(in, 1, len, stdin) != len) return 2;
        const uint8_t status = (uint8_t)(lenet_agent_decode_input_zp(in, len, out, size, zp) != 0);
        fwrite(&status, 1, 1, stdout);
        fwrite(out, 1, size, stdout);
    }
    return 0;
}
