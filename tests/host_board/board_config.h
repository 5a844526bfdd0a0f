/* board_config.h for the host build of the firmware protocol (tests only). */
#ifndef LENET_EDGE_BOARD_CONFIG_H
#define LENET_EDGE_BOARD_CONFIG_H
#define FIRMWARE_VERSION "host"
#define BOARD_NAME "host"
#define CPU_NAME "x86-64"
#define CLOCK_HZ 1000000000u
#define UART_BAUD 115200u
#ifndef UART_RX_BUFFER
#define UART_RX_BUFFER 2048u
#endif
#endif
