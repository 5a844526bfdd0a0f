/*
 * agent_stdio.c - the validation agent alone on a Linux host, on stdin/stdout (tests): the
 * pull-style I/O (io.read, non-blocking), as a user's polled driver would give it, and a
 * host-buildable entry point for feeding the parser arbitrary bytes. Exits at end of input.
 */
#define _POSIX_C_SOURCE 200809L
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "lenet5_model.h"
#include "lenet_agent.h"

static int input_closed;

static uint32_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

static uint32_t io_read(void *ctx, uint8_t *buf, uint32_t max)
{
    (void)ctx;
    struct pollfd p = {0, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0) return 0;
    ssize_t n = read(0, buf, max);
    if (n <= 0) {
        input_closed = 1;
        return 0;
    }
    return (uint32_t)n;
}

static void io_write(void *ctx, const uint8_t *data, uint32_t len)
{
    (void)ctx;
    if (fwrite(data, 1, len, stdout) != len) exit(0);
}

static uint32_t io_counter(void *ctx)
{
    (void)ctx;
    return now_ms();
}

static void info_keys(void *ctx, struct lenet_agent_info *info)
{
    (void)ctx;
    lenet_agent_info_text(info, "transport", "stdio");
    lenet_agent_info_int(info, "answer", -42);
}

int main(void)
{
    static int8_t input[LENET5_INPUT_SIZE], output[LENET5_OUTPUT_SIZE];
    static uint8_t ring[LENET_AGENT_RX_BYTES(LENET5_INPUT_SIZE)];
    static const struct lenet_agent_model model = LENET_AGENT_MODEL(lenet5, LENET5, input, output);
    static const struct lenet_agent_io io = {
        .read = io_read, .write = io_write, .counter = io_counter, .counter_unit = "milliseconds",
        .counter_hz = 1000, .counter_resolution = 1, .millis = io_counter, .info_keys = info_keys,
        .firmware = "stdio", .board = "host", .cpu = "x86-64",
    };
    static struct lenet_agent agent;
    if (!lenet_agent_init(&agent, &io, &model, ring, sizeof ring)) return 2;
    /* A ring too small for the longest request is refused. */
    static struct lenet_agent small;
    if (lenet_agent_init(&small, &io, &model, ring, sizeof ring - 1u)) return 2;
    lenet_agent_banner(&agent);
    fflush(stdout);
    while (!input_closed) {
        if (!lenet_agent_poll(&agent)) {
            fflush(stdout);
            struct pollfd p = {0, POLLIN, 0};
            poll(&p, 1, 10);
        }
    }
    while (lenet_agent_poll(&agent)) {
    }
    fflush(stdout);
    return 0;
}
