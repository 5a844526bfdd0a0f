/*
 * protocol.c - serve the lenet-edge serial protocol (spec: docs/PROTOCOL.md).
 *
 * One loop: find a frame (resynchronising over anything that is not one), check both
 * CRCs, answer it. Requests are answered strictly in arrival order, which is what lets
 * the host pipeline several of them and detect a lost one. INFER and TRACE are pure
 * functions of their input, so the host may resend them freely.
 */
#include "protocol.h"

#include <stddef.h>
#include <string.h>

#include "board.h"
#include "lenet5_model.h"

/* Largest payload accepted: enough for a raw (uncoded) input inside a TRACE request. */
#define PROTO_RAW_REQUEST (LENET5_INPUT_SIZE + 6u)
#define PROTO_MAX_PAYLOAD (PROTO_RAW_REQUEST > 1024u ? PROTO_RAW_REQUEST : 1024u)
#define PROTO_FRAME_MAX (PROTO_HEADER_SIZE + PROTO_MAX_PAYLOAD + PROTO_TRAILER_SIZE)

#define XSTR(x) STR(x)
#define STR(x) #x

/* Traced tensors per inference is bounded so per-layer counts fit one reply. */
#define PROTO_MAX_LAYERS 64u

static uint8_t rx[PROTO_FRAME_MAX];
static uint32_t rx_have;
static uint8_t tx[PROTO_FRAME_MAX];
static int8_t input[LENET5_INPUT_SIZE];
static int8_t output[LENET5_OUTPUT_SIZE];
static uint8_t hash4[4];

static struct {
    uint32_t frames_ok;
    uint32_t frames_bad;
    uint32_t garbage;
} stats;

/* ---- CRCs --------------------------------------------------------------------- */

uint8_t protocol_crc8(const uint8_t *data, uint32_t len)
{
    uint8_t crc = 0;
    for (uint32_t i = 0; i < len; i++) {
        crc ^= data[i];
        for (int b = 0; b < 8; b++) {
            crc = (crc & 0x80u) ? (uint8_t)((crc << 1) ^ 0x07u) : (uint8_t)(crc << 1);
        }
    }
    return crc;
}

/* Nibble table: 64 bytes of flash, ~2x faster than bitwise. */
static const uint32_t crc32_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
    0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

uint32_t protocol_crc32(uint32_t crc, const uint8_t *data, uint32_t len)
{
    crc = ~crc;
    for (uint32_t i = 0; i < len; i++) {
        crc ^= data[i];
        crc = (crc >> 4) ^ crc32_nibble[crc & 0x0Fu];
        crc = (crc >> 4) ^ crc32_nibble[crc & 0x0Fu];
    }
    return ~crc;
}

/* ---- little helpers ------------------------------------------------------------ */

static void put_u16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u16(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8);
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return 0;
}

/* ---- input decoding ------------------------------------------------------------ */

int protocol_decode_input(const uint8_t *data, uint32_t len, int8_t *out, uint32_t size)
{
    if (len < 1u) return -1;
    if (data[0] == PROTO_ENC_RAW) {
        if (len - 1u != size) return -1;
        memcpy(out, data + 1, size);
        return 0;
    }
    if (data[0] != PROTO_ENC_RUNS || len < 2u) return -1;
    const int8_t background = (int8_t)data[1];
    uint32_t filled = 0;
    uint32_t i = 2;
    while (i < len) {
        const uint32_t token = data[i++];
        if (token < 0x80u) {
            const uint32_t count = token + 1u;
            if (filled + count > size) return -1;
            memset(out + filled, background, count);
            filled += count;
        } else {
            const uint32_t count = token - 0x7Fu;
            if (filled + count > size || i + count > len) return -1;
            memcpy(out + filled, data + i, count);
            filled += count;
            i += count;
        }
    }
    return filled == size ? 0 : -1;
}

/* ---- sending ------------------------------------------------------------------ */

/* CRC-32 of type..len (skipping the header CRC byte) and the payload. */
static uint32_t frame_crc(const uint8_t *frame, uint32_t len)
{
    return protocol_crc32(protocol_crc32(0, frame + 2, 5), frame + PROTO_HEADER_SIZE, len);
}

static uint8_t *const tx_payload = tx + PROTO_HEADER_SIZE;

static void send_frame(uint32_t type, uint32_t seq, uint32_t len)
{
    tx[0] = PROTO_SYNC0;
    tx[1] = PROTO_SYNC1;
    tx[2] = (uint8_t)type;
    put_u16(tx + 3, seq);
    put_u16(tx + 5, len);
    tx[7] = protocol_crc8(tx + 2, 5);
    put_u32(tx + PROTO_HEADER_SIZE + len, frame_crc(tx, len));
    board_uart_write(tx, PROTO_HEADER_SIZE + len + PROTO_TRAILER_SIZE);
}

static void send_status(uint32_t type, uint32_t seq, uint32_t status)
{
    tx_payload[0] = (uint8_t)status;
    send_frame(type, seq, 1);
}

/* ---- INFO: key=value lines ----------------------------------------------------- */

static uint32_t text_len;

static void text(const char *s)
{
    while (*s && text_len < PROTO_MAX_PAYLOAD) tx_payload[text_len++] = (uint8_t)*s++;
}

static void text_uint(uint32_t v)
{
    char digits[11];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    while (n && text_len < PROTO_MAX_PAYLOAD) tx_payload[text_len++] = (uint8_t)digits[--n];
}

static void text_int(int32_t v)
{
    if (v < 0) {
        text("-");
        text_uint((uint32_t)(-(v + 1)) + 1u);
    } else {
        text_uint((uint32_t)v);
    }
}

static void kv(const char *key, const char *value)
{
    text(key);
    text("=");
    text(value);
    text("\n");
}

static void kv_uint(const char *key, uint32_t value)
{
    text(key);
    text("=");
    text_uint(value);
    text("\n");
}

static void handle_info(uint32_t seq)
{
    tx_payload[0] = PROTO_OK;
    text_len = 1;
    kv_uint("protocol", PROTOCOL_VERSION);
    kv("firmware", FIRMWARE_VERSION);
    kv("board", BOARD_NAME);
    kv("cpu", CPU_NAME);
    const struct board_timing *timing = board_timing();
    kv_uint("clock_hz", timing->clock_hz);
    kv_uint("clock_fault", timing->clock_fault);
    kv("clock_status", timing->clock_status);
    kv("counter_source", timing->counter_source);
    kv("counter_unit", timing->counter_unit);
    kv_uint("counter_hz", timing->counter_hz);
    kv_uint("counter_resolution", timing->counter_resolution);
    kv_uint("timebase_hz", timing->timebase_hz);
    kv_uint("emulated", timing->emulated);
    kv_uint("uart_baud", timing->uart_baud);
    kv_uint("uart_divisor", timing->uart_divisor);
    kv_uint("uart_baud_actual", timing->uart_baud_actual);
    kv_uint("rx_buffer", UART_RX_BUFFER);
    kv_uint("max_payload", PROTO_MAX_PAYLOAD);
    kv("model_hash", LENET5_MODEL_HASH);
    kv_uint("input_size", LENET5_INPUT_SIZE);
    kv_uint("output_size", LENET5_OUTPUT_SIZE);
    kv("input_scale", XSTR(LENET5_INPUT_SCALE));
    text("input_zero_point=");
    text_int((int32_t)(LENET5_INPUT_ZERO_POINT));
    text("\n");
    kv("output_scale", XSTR(LENET5_OUTPUT_SCALE));
    text("output_zero_point=");
    text_int((int32_t)(LENET5_OUTPUT_ZERO_POINT));
    text("\n");
    kv_uint("arena_bytes", LENET5_ARENA_BYTES);
    kv_uint("traced_tensors", LENET5_NUM_TRACED_TENSORS);
    kv_uint("stack_used", board_stack_used());
    kv_uint("rx_dropped", board_uart_rx_dropped());
    kv_uint("frames_ok", stats.frames_ok);
    kv_uint("frames_bad", stats.frames_bad);
    kv_uint("garbage_bytes", stats.garbage);
    kv_uint("uptime_ms", board_millis());
    send_frame(PROTO_INFO | PROTO_RESPONSE, seq, text_len);
}

/* ---- INFER ---------------------------------------------------------------------- */

/* status, hash4, input crc, count: the head of INFER and TRACE replies. */
static uint32_t put_result_head(uint32_t count)
{
    tx_payload[0] = PROTO_OK;
    memcpy(tx_payload + 1, hash4, 4);
    put_u32(tx_payload + 5, protocol_crc32(0, (const uint8_t *)input, LENET5_INPUT_SIZE));
    put_u32(tx_payload + 9, count);
    return 13;
}

static void handle_infer(uint32_t seq, const uint8_t *payload, uint32_t len)
{
    const uint32_t type = PROTO_INFER | PROTO_RESPONSE;
    if (protocol_decode_input(payload, len, input, LENET5_INPUT_SIZE) != 0) {
        send_status(type, seq, PROTO_BAD_ENCODING);
        return;
    }
    const uint32_t start = board_counter_read();
    const int rc = lenet5_invoke(input, output);
    const uint32_t elapsed = board_counter_read() - start;
    if (rc != 0) {
        send_status(type, seq, PROTO_INVOKE_FAILED);
        return;
    }
    const uint32_t n = put_result_head(elapsed);
    memcpy(tx_payload + n, output, LENET5_OUTPUT_SIZE);
    send_frame(type, seq, n + LENET5_OUTPUT_SIZE);
}

/* ---- TRACE: one chunk of one intermediate tensor, plus every layer's count ---------- */

struct trace_ctx {
    uint32_t layer;      /* which traced tensor to copy */
    uint32_t offset;     /* from which byte */
    uint32_t max_chunk;  /* at most this many bytes */
    uint32_t calls;      /* tensors seen so far */
    uint32_t last;       /* counter when the previous op ended */
    int32_t tensor_index;
    uint32_t size;
    uint32_t chunk;
    uint32_t counts[PROTO_MAX_LAYERS];
    uint8_t *dest;
};

static void trace_fn(void *ctx_ptr, int tensor_index, const int8_t *data, int32_t size)
{
    struct trace_ctx *ctx = (struct trace_ctx *)ctx_ptr;
    const uint32_t now = board_counter_read();
    if (ctx->calls < PROTO_MAX_LAYERS) ctx->counts[ctx->calls] = now - ctx->last;
    if (ctx->calls == ctx->layer) {
        ctx->tensor_index = tensor_index;
        ctx->size = (uint32_t)size;
        if (ctx->offset < ctx->size) {
            uint32_t n = ctx->size - ctx->offset;
            if (n > ctx->max_chunk) n = ctx->max_chunk;
            memcpy(ctx->dest, data + ctx->offset, n);
            ctx->chunk = n;
        }
    }
    ctx->calls++;
    /* The copy above is not the next op's work: restart the clock after it. */
    ctx->last = board_counter_read();
}

static void handle_trace(uint32_t seq, const uint8_t *payload, uint32_t len)
{
    static struct trace_ctx ctx;
    const uint32_t type = PROTO_TRACE | PROTO_RESPONSE;
    const uint32_t layers = LENET5_NUM_TRACED_TENSORS;
    /* status hash4 crc(4) layers layer tensor(4) size(4) offset(4), counts, chunk */
    const uint32_t head = 23u + 4u * layers;
    if (len < 5u || layers > PROTO_MAX_LAYERS) {
        send_status(type, seq, PROTO_BAD_LENGTH);
        return;
    }
    memset(&ctx, 0, sizeof ctx);
    ctx.layer = payload[0];
    ctx.offset = get_u16(payload + 1);
    ctx.max_chunk = get_u16(payload + 3);
    if (ctx.max_chunk > PROTO_MAX_PAYLOAD - head) ctx.max_chunk = PROTO_MAX_PAYLOAD - head;
    ctx.dest = tx_payload + head;
    ctx.tensor_index = -1;
    if (ctx.layer >= layers) {
        send_status(type, seq, PROTO_BAD_LAYER);
        return;
    }
    if (protocol_decode_input(payload + 5, len - 5u, input, LENET5_INPUT_SIZE) != 0) {
        send_status(type, seq, PROTO_BAD_ENCODING);
        return;
    }
    ctx.last = board_counter_read();
    if (lenet5_invoke_traced(input, output, trace_fn, &ctx) != 0) {
        send_status(type, seq, PROTO_INVOKE_FAILED);
        return;
    }
    /* TRACE has no single count: bytes 9.. carry layers, layer, ... (see PROTOCOL.md). */
    (void)put_result_head(0);
    uint32_t n = 9;
    tx_payload[n++] = (uint8_t)layers;
    tx_payload[n++] = (uint8_t)ctx.layer;
    put_u32(tx_payload + n, (uint32_t)ctx.tensor_index);
    n += 4;
    put_u32(tx_payload + n, ctx.size);
    n += 4;
    put_u32(tx_payload + n, ctx.offset);
    n += 4;
    for (uint32_t i = 0; i < layers; i++, n += 4) put_u32(tx_payload + n, ctx.counts[i]);
    send_frame(type, seq, n + ctx.chunk);
}

/* ---- receiving -------------------------------------------------------------------- */

/* Make sure rx holds at least n bytes; 0 when the line went quiet mid-frame. */
static int rx_need(uint32_t n)
{
    while (rx_have < n) {
        const int b = board_uart_read(rx_have ? PROTO_BYTE_TIMEOUT_MS : BOARD_WAIT_FOREVER);
        if (b < 0) return 0;
        rx[rx_have++] = (uint8_t)b;
    }
    return 1;
}

/* Drop rx[0] and everything up to the next possible sync byte. */
static void rx_resync(void)
{
    uint32_t i = 1;
    while (i < rx_have && rx[i] != PROTO_SYNC0) i++;
    stats.garbage += i;
    memmove(rx, rx + i, rx_have - i);
    rx_have -= i;
}

static void rx_consume(uint32_t n)
{
    memmove(rx, rx + n, rx_have - n);
    rx_have -= n;
}

/* Block until a frame with good CRCs is in rx[0..]; returns its total length. */
static uint32_t receive_frame(void)
{
    for (;;) {
        if (!rx_need(1)) {
            rx_have = 0;
            continue;
        }
        if (rx[0] != PROTO_SYNC0) {
            rx_resync();
            continue;
        }
        if (!rx_need(2)) {
            rx_have = 0;
            continue;
        }
        if (rx[1] != PROTO_SYNC1) {
            rx_resync();
            continue;
        }
        if (!rx_need(PROTO_HEADER_SIZE)) {
            stats.frames_bad++;
            rx_have = 0;
            continue;
        }
        const uint32_t len = get_u16(rx + 5);
        if (protocol_crc8(rx + 2, 5) != rx[7] || len > PROTO_MAX_PAYLOAD) {
            stats.frames_bad++;
            rx_resync();
            continue;
        }
        const uint32_t total = PROTO_HEADER_SIZE + len + PROTO_TRAILER_SIZE;
        if (!rx_need(total)) {
            stats.frames_bad++;
            rx_have = 0;
            continue;
        }
        const uint32_t crc = (uint32_t)rx[total - 4] | ((uint32_t)rx[total - 3] << 8) |
                             ((uint32_t)rx[total - 2] << 16) | ((uint32_t)rx[total - 1] << 24);
        if (frame_crc(rx, len) != crc) {
            stats.frames_bad++;
            rx_resync();
            continue;
        }
        return total;
    }
}

void protocol_serve(void)
{
    static const char model_hash[] = LENET5_MODEL_HASH;
    for (int i = 0; i < 4; i++) {
        hash4[i] = (uint8_t)((hex_value(model_hash[2 * i]) << 4) | hex_value(model_hash[2 * i + 1]));
    }
    for (;;) {
        const uint32_t total = receive_frame();
        const uint32_t type = rx[2];
        const uint32_t seq = get_u16(rx + 3);
        const uint32_t len = get_u16(rx + 5);
        const uint8_t *payload = rx + PROTO_HEADER_SIZE;
        stats.frames_ok++;
        switch (type) {
        case PROTO_INFO:
            handle_info(seq);
            break;
        case PROTO_INFER:
            handle_infer(seq, payload, len);
            break;
        case PROTO_TRACE:
            handle_trace(seq, payload, len);
            break;
        case PROTO_ECHO: {
            const uint32_t n = len < PROTO_MAX_PAYLOAD ? len : PROTO_MAX_PAYLOAD - 1u;
            tx_payload[0] = PROTO_OK;
            memcpy(tx_payload + 1, payload, n);
            send_frame(PROTO_ECHO | PROTO_RESPONSE, seq, 1u + n);
            break;
        }
        case PROTO_RESET:
            send_status(PROTO_RESET | PROTO_RESPONSE, seq, PROTO_OK);
            board_uart_flush();
            board_reset();
            break;
        default:
            send_status(PROTO_ERROR, seq, PROTO_UNKNOWN_TYPE);
            break;
        }
        rx_consume(total);
    }
}
