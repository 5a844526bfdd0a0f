/*
 * main.c - common firmware entry: bring up the board, greet, serve the host protocol.
 */
#include "board.h"
#include "protocol.h"

int main(void)
{
    static const char banner[] = "lenet-edge " FIRMWARE_VERSION " " BOARD_NAME " " CPU_NAME "\r\n";

    board_init();
    /* Human-readable for a terminal; the host resynchronises over it. */
    board_uart_write((const uint8_t *)banner, (uint32_t)(sizeof banner - 1u));
    protocol_serve();
    for (;;) {
    }
}
