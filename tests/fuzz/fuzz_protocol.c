/*
 * fuzz_protocol.c - libFuzzer harness for the device side of the serial protocol: the
 * validation agent (firmware_templates/agent/lenet_agent.c), built with the real
 * generated model.
 *
 * A random byte string almost never passes a CRC-32, so the input is a list of records
 * instead, each either raw bytes for the "UART" or a frame (type, seq, payload) whose
 * CRCs the harness computes with the agent's own functions (optionally damaged). The
 * agent pulls the stream through its non-blocking read(); once the stream is exhausted
 * the harness advances the clock past the partial-frame timeout and polls until the
 * agent has nothing left to answer. Each run starts a fresh agent (its state is its
 * struct). Built by tests/fuzzing.py with -fsanitize=fuzzer,address,undefined.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lenet5_model.h"
#include "lenet_agent.h"

#define STREAM_MAX (64u * 1024u)
#define MAX_PAYLOAD 1024u /* longer than any request the agent accepts */

static uint8_t stream[STREAM_MAX];
static size_t stream_len, stream_pos;
static uint32_t clock_ms;
static uint32_t counter_ticks;
static int reset_requested;

static uint32_t io_read(void *ctx, uint8_t *buf, uint32_t max)
{
    (void)ctx;
    uint32_t n = (uint32_t)(stream_len - stream_pos);
    if (n > max) n = max;
    if (n > 7u) n = 7u; /* small reads: frames straddle reads as on a UART */
    memcpy(buf, stream + stream_pos, n);
    stream_pos += n;
    return n;
}

static void io_write(void *ctx, const uint8_t *data, uint32_t len)
{
    (void)ctx;
    volatile uint8_t sink = 0; /* read every byte sent, so ASan checks the reply */
    for (uint32_t i = 0; i < len; i++) sink ^= data[i];
    (void)sink;
}

static uint32_t io_counter(void *ctx)
{
    (void)ctx;
    return counter_ticks += 977u;
}

static uint32_t io_millis(void *ctx)
{
    (void)ctx;
    return clock_ms;
}

static void io_reset(void *ctx)
{
    (void)ctx;
    reset_requested = 1;
}

static const struct lenet_agent_io io = {
    .read = io_read,
    .write = io_write,
    .counter = io_counter,
    .counter_unit = "cycles",
    .counter_hz = 1000000u,
    .counter_resolution = 1u,
    .millis = io_millis,
    .reset = io_reset,
    .firmware = "fuzz",
    .board = "fuzz",
    .cpu = "host",
    .clock_hz = 1000000u,
    .uart_baud = 115200u,
};

static void put_u16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    put_u16(p, v);
    put_u16(p + 2, v >> 16);
}

static void append(const uint8_t *data, size_t len)
{
    if (len > STREAM_MAX - stream_len) len = STREAM_MAX - stream_len;
    memcpy(stream + stream_len, data, len);
    stream_len += len;
}

/* Records: tag byte; tag bit 0 clear: raw, then a length byte and that many bytes;
 * set: a frame, then type, seq (2), length (2, taken modulo MAX_PAYLOAD + 17) and the
 * payload bytes that follow; tag bit 1 damages the header CRC, bit 2 the CRC-32. */
static void build_stream(const uint8_t *data, size_t size)
{
    static uint8_t frame[LENET_AGENT_HEADER_SIZE + MAX_PAYLOAD + 17u + LENET_AGENT_TRAILER_SIZE];
    size_t i = 0;
    stream_len = stream_pos = 0;
    while (i < size && stream_len < STREAM_MAX) {
        const uint8_t tag = data[i++];
        if (!(tag & 1u)) {
            size_t n = i < size ? data[i++] : 0u;
            if (n > size - i) n = size - i;
            append(data + i, n);
            i += n;
            continue;
        }
        if (size - i < 5u) break;
        const uint32_t type = data[i];
        const uint32_t seq = (uint32_t)data[i + 1] | ((uint32_t)data[i + 2] << 8);
        const uint32_t len = ((uint32_t)data[i + 3] | ((uint32_t)data[i + 4] << 8)) % (MAX_PAYLOAD + 17u);
        i += 5u;
        const size_t have = size - i < len ? size - i : len; /* missing payload reads as 0 */
        frame[0] = LENET_AGENT_SYNC0;
        frame[1] = LENET_AGENT_SYNC1;
        frame[2] = (uint8_t)type;
        put_u16(frame + 3, seq);
        put_u16(frame + 5, len);
        frame[7] = (uint8_t)(lenet_agent_crc8(frame + 2, 5) ^ ((tag & 2u) ? 0x01u : 0u));
        memset(frame + LENET_AGENT_HEADER_SIZE, 0, len);
        memcpy(frame + LENET_AGENT_HEADER_SIZE, data + i, have);
        uint32_t crc = lenet_agent_crc32(0, frame + 2, 5);
        crc = lenet_agent_crc32(crc, frame + LENET_AGENT_HEADER_SIZE, len);
        put_u32(frame + LENET_AGENT_HEADER_SIZE + len, crc ^ ((tag & 4u) ? 1u : 0u));
        append(frame, LENET_AGENT_HEADER_SIZE + len + LENET_AGENT_TRAILER_SIZE);
        i += have;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct lenet_agent agent;
    static int8_t output[LENET5_OUTPUT_SIZE];
    static uint8_t ring[LENET_AGENT_RX_BYTES(LENET5_INPUT_SIZE)];
    static struct lenet_agent_model model = LENET_AGENT_MODEL(lenet5, LENET5, 0, output);

    build_stream(data, size);
    clock_ms = 0;
    reset_requested = 0;
    model.input = lenet5_input_buffer();
    if (!lenet_agent_init(&agent, &io, &model, ring, sizeof ring)) return 0;
    lenet_agent_banner(&agent);
    /* Poll while there is input or work; a poll that answers nothing advances the clock
     * (a stalled partial frame then times out). Bounded: every poll either consumes
     * input, answers a request, or moves time on. */
    for (uint32_t idle = 0; idle < 4u && !reset_requested;) {
        const size_t before = stream_pos;
        if (lenet_agent_poll(&agent) || stream_pos != before) {
            idle = 0;
        } else {
            idle++;
            clock_ms += LENET_AGENT_BYTE_TIMEOUT_MS + 1u;
        }
        clock_ms += 1u;
    }
    return 0;
}
