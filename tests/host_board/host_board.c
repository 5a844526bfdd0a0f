/*
 * host_board.c - board.h on a Linux host, for fast tests of the validation agent
 * (lenet_agent.c, run by the firmware's own main.c and agent_io.c) and the generated
 * library: the "UART" is one TCP connection (pyserial socket:// URL).
 * Listens on 127.0.0.1:$HOST_BOARD_PORT (0 = any), prints "PORT <n>" on stdout,
 * serves one connection, exits when the host closes it. board_reset() exits 3.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "board.h"
#include "board_port.h"

static int client = -1;
static uint8_t buf[4096];
static size_t buf_pos, buf_len;
static uint64_t t0;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void board_init(void)
{
    const char *port_env = getenv("HOST_BOARD_PORT");
    int server = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((uint16_t)(port_env ? atoi(port_env) : 0));
    if (bind(server, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(server, 1) != 0) {
        perror("host_board: bind/listen");
        exit(2);
    }
    socklen_t alen = sizeof addr;
    getsockname(server, (struct sockaddr *)&addr, &alen);
    printf("PORT %d\n", ntohs(addr.sin_port));
    fflush(stdout);
    client = accept(server, NULL, NULL);
    close(server);
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    t0 = now_ns();
}

/* Writes are gathered and sent when the device next reads (or the buffer fills), as a
 * UART's transmit FIFO would: a streamed reply leaves in one TCP segment, not many. */
static uint8_t tx_buf[4096];
static size_t tx_len;

void board_uart_flush(void)
{
    const uint8_t *data = tx_buf;
    while (tx_len) {
        ssize_t n = send(client, data, tx_len, MSG_NOSIGNAL);
        if (n <= 0) exit(0);
        data += n;
        tx_len -= (size_t)n;
    }
}

void board_uart_write(const uint8_t *data, uint32_t len)
{
    while (len) {
        if (tx_len == sizeof tx_buf) board_uart_flush();
        size_t n = sizeof tx_buf - tx_len;
        if (n > len) n = len;
        memcpy(tx_buf + tx_len, data, n);
        tx_len += n;
        data += n;
        len -= (uint32_t)n;
    }
}

int board_uart_read(uint32_t timeout_ms)
{
    if (buf_pos == buf_len) {
        board_uart_flush();
        struct pollfd p = {client, POLLIN, 0};
        int wait = timeout_ms == BOARD_WAIT_FOREVER ? -1 : (int)timeout_ms;
        if (poll(&p, 1, wait) <= 0) return -1;
        ssize_t n = recv(client, buf, sizeof buf, 0);
        if (n <= 0) exit(0); /* host closed the link */
        buf_pos = 0;
        buf_len = (size_t)n;
    }
    return buf[buf_pos++];
}

/* The host has no receive interrupt: while the firmware would sleep, wait up to 10 ms for
 * bytes and hand them to board_rx_push, as the UART interrupt does on a board. */
void board_sleep_unless_changed(const volatile uint32_t *word, uint32_t value)
{
    board_uart_flush();
    if (*word != value) return;
    struct pollfd p = {client, POLLIN, 0};
    if (poll(&p, 1, 10) <= 0) return;
    uint8_t in[4096];
    ssize_t n = recv(client, in, sizeof in, 0);
    if (n <= 0) exit(0); /* host closed the link */
    for (ssize_t i = 0; i < n; i++) board_rx_push(in[i]);
}

int board_uart_poll(void) { return board_uart_read(0); }
uint32_t board_uart_rx_dropped(void) { return 0; }

/* The host process has no painted stack to measure. */
uint32_t board_stack_used(void) { return 0; }
uint32_t board_counter_read(void) { return (uint32_t)(now_ns() - t0); }
uint32_t board_millis(void) { return (uint32_t)((now_ns() - t0) / 1000000u); }

/* What a real board measures at start-up (board.h): here, the host's own clock. */
struct board_timing board_found = {
    CLOCK_HZ, 0u, "ok", "clock_gettime", "nanoseconds", 1000000000u, 1u, 1000000000u, 0u,
    0u, UART_BAUD,
};

const struct board_timing *board_timing(void)
{
    return &board_found;
}

void board_reset(void)
{
    board_uart_flush();
    exit(3);
}
