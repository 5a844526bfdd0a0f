/*
 * fuzz_protocol.c - libFuzzer harness for the device side of the serial protocol
 * (firmware_templates/common/protocol.c), built with the real generated model.
 *
 * protocol.c is included here (one translation unit) so each run can reset its static
 * receive state, and its own CRC functions build valid frames: a random byte string
 * almost never passes a CRC-32, so the input is a list of records instead, each either
 * raw bytes for the "UART" or a frame (type, seq, payload) whose CRCs the harness
 * computes (optionally damaged). The UART read returns the stream and, when it is
 * exhausted, ends the run (longjmp out of protocol_serve, which never returns).
 * Built by tests/fuzzing.py with -fsanitize=fuzzer,address,undefined.
 */
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "protocol.c"

#define STREAM_MAX (64u * 1024u)

static uint8_t stream[STREAM_MAX];
static size_t stream_len, stream_pos;
static jmp_buf run_over;
static uint32_t clock_ticks;

void board_init(void) {}

void board_uart_write(const uint8_t *data, uint32_t len)
{
    volatile uint8_t sink = 0; /* read every byte sent, so ASan checks the reply buffer */
    for (uint32_t i = 0; i < len; i++) sink ^= data[i];
    (void)sink;
}

void board_uart_flush(void) {}

int board_uart_read(uint32_t timeout_ms)
{
    if (stream_pos < stream_len) return stream[stream_pos++];
    if (timeout_ms != BOARD_WAIT_FOREVER) return -1; /* the line went quiet mid-frame */
    longjmp(run_over, 1);
}

int board_uart_poll(void) { return board_uart_read(0); }
uint32_t board_uart_rx_dropped(void) { return 0; }
uint32_t board_stack_used(void) { return 0; }
uint32_t board_counter_read(void) { return clock_ticks += 977u; }
uint32_t board_millis(void) { return clock_ticks / 1000u; }

const struct board_timing *board_timing(void)
{
    static const struct board_timing timing = {
        CLOCK_HZ, 0u, "ok", "fuzz", "cycles", CLOCK_HZ, 1u, CLOCK_HZ, 0u,
        UART_BAUD, 0u, UART_BAUD,
    };
    return &timing;
}
void board_reset(void) { longjmp(run_over, 1); }

static void append(const uint8_t *data, size_t len)
{
    if (len > STREAM_MAX - stream_len) len = STREAM_MAX - stream_len;
    memcpy(stream + stream_len, data, len);
    stream_len += len;
}

/* Records: tag byte; tag bit 0 clear: raw, then a length byte and that many bytes;
 * set: a frame, then type, seq (2), length (2, taken modulo PROTO_MAX_PAYLOAD + 17) and
 * the payload bytes that follow; tag bit 1 damages the header CRC, bit 2 the CRC-32. */
static void build_stream(const uint8_t *data, size_t size)
{
    static uint8_t frame[PROTO_FRAME_MAX + 16u];
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
        uint32_t len = ((uint32_t)data[i + 3] | ((uint32_t)data[i + 4] << 8)) % (PROTO_MAX_PAYLOAD + 17u);
        i += 5u;
        const size_t have = size - i < len ? size - i : len; /* missing payload reads as 0 */
        frame[0] = PROTO_SYNC0;
        frame[1] = PROTO_SYNC1;
        frame[2] = (uint8_t)type;
        put_u16(frame + 3, seq);
        put_u16(frame + 5, len);
        frame[7] = (uint8_t)(protocol_crc8(frame + 2, 5) ^ ((tag & 2u) ? 0x01u : 0u));
        if (len <= PROTO_FRAME_MAX - PROTO_HEADER_SIZE - PROTO_TRAILER_SIZE) {
            memset(frame + PROTO_HEADER_SIZE, 0, len);
            memcpy(frame + PROTO_HEADER_SIZE, data + i, have);
            put_u32(frame + PROTO_HEADER_SIZE + len, frame_crc(frame, len) ^ ((tag & 4u) ? 1u : 0u));
            append(frame, PROTO_HEADER_SIZE + len + PROTO_TRAILER_SIZE);
        } else {
            append(frame, PROTO_HEADER_SIZE); /* an over-long header: the device must skip it */
            append(data + i, have);
        }
        i += have;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    build_stream(data, size);
    rx_have = 0;
    memset(&stats, 0, sizeof stats);
    if (setjmp(run_over) == 0) protocol_serve();
    return 0;
}
