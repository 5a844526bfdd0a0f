/*
 * lenet_agent.c - the lenet-edge validation agent (spec: PROTOCOL.md; API: lenet_agent.h).
 *
 * Frames are found and checked in place in the receive ring (resynchronising over
 * anything that is not one) and answered strictly in arrival order, which is what lets
 * the host pipeline requests and detect a lost one. Replies are streamed through write()
 * with the CRC computed on the fly. INFER and TRACE are pure functions of their input,
 * so the host may resend them freely.
 */
#include "lenet_agent.h"

#include <stddef.h>
#include <string.h>

#define RX_ANY_SIZE 0xFFFFFFFFu /* a "ring" that never wraps: a plain buffer */

/* ---- CRCs ---------------------------------------------------------------------- */

static uint8_t crc8_byte(uint8_t crc, uint8_t byte)
{
    crc ^= byte;
    for (int b = 0; b < 8; b++) {
        crc = (crc & 0x80u) ? (uint8_t)((crc << 1) ^ 0x07u) : (uint8_t)(crc << 1);
    }
    return crc;
}

uint8_t lenet_agent_crc8(const uint8_t *data, uint32_t len)
{
    uint8_t crc = 0;
    for (uint32_t i = 0; i < len; i++) crc = crc8_byte(crc, data[i]);
    return crc;
}

/* Nibble table: 64 bytes of flash, ~2x faster than bitwise. */
static const uint32_t crc32_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
    0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

/* The CRC register before the final inversion ("raw"), so bytes can be fed one by one. */
static uint32_t crc32_raw_byte(uint32_t crc, uint8_t byte)
{
    crc ^= byte;
    crc = (crc >> 4) ^ crc32_nibble[crc & 0x0Fu];
    return (crc >> 4) ^ crc32_nibble[crc & 0x0Fu];
}

uint32_t lenet_agent_crc32(uint32_t crc, const uint8_t *data, uint32_t len)
{
    crc = ~crc;
    for (uint32_t i = 0; i < len; i++) crc = crc32_raw_byte(crc, data[i]);
    return ~crc;
}

/* ---- the receive ring ------------------------------------------------------------ */

static uint32_t rx_avail(const struct lenet_agent *a)
{
    const uint32_t head = a->rx_head, tail = a->rx_tail;
    return head >= tail ? head - tail : head + a->rx_size - tail;
}

/* Index of the byte `offset` bytes after the tail. */
static uint32_t rx_index(const struct lenet_agent *a, uint32_t offset)
{
    uint32_t i = a->rx_tail + offset;
    return i >= a->rx_size ? i - a->rx_size : i;
}

static uint8_t rx_at(const struct lenet_agent *a, uint32_t offset)
{
    return a->rx[rx_index(a, offset)];
}

static void rx_consume(struct lenet_agent *a, uint32_t n)
{
    a->rx_tail = rx_index(a, n);
    a->rx_seen -= n;
}

void lenet_agent_rx_push(struct lenet_agent *a, uint8_t byte)
{
    if (a->rx_size == 0u) { /* not initialised yet (an interrupt at start-up) */
        a->rx_lost++;
        return;
    }
    const uint32_t head = a->rx_head;
    const uint32_t next = head + 1u == a->rx_size ? 0u : head + 1u;
    if (next == a->rx_tail) {
        a->rx_lost++;
        return;
    }
    a->rx[head] = byte;
    a->rx_head = next;
}

/* Pull what read() has into the free part of the ring (one or two contiguous pieces). */
static void rx_pull(struct lenet_agent *a)
{
    if (a->io->read == NULL) return;
    for (;;) {
        const uint32_t head = a->rx_head, tail = a->rx_tail;
        uint32_t room = tail > head ? tail - head - 1u : a->rx_size - head - (tail == 0u ? 1u : 0u);
        if (room == 0u) return;
        const uint32_t n = a->io->read(a->io->ctx, a->rx + head, room);
        if (n == 0u) return;
        a->rx_head = head + n == a->rx_size ? 0u : head + n;
    }
}

/* ---- input decoding (from the ring, or from a plain buffer) ------------------------- */

/* The encoded input is len bytes starting at buf[start], wrapping at size. */
static int decode(const uint8_t *buf, uint32_t size, uint32_t start, uint32_t len, int8_t *out,
                  uint32_t out_size)
{
    uint32_t pos = start;
#define NEXT_BYTE() (pos_byte = buf[pos], pos = (pos + 1u == size ? 0u : pos + 1u), pos_byte)
    uint8_t pos_byte;
    if (len < 1u) return -1;
    const uint32_t kind = NEXT_BYTE();
    if (kind == LENET_AGENT_ENC_RAW) {
        if (len - 1u != out_size) return -1;
        for (uint32_t i = 0; i < out_size; i++) out[i] = (int8_t)NEXT_BYTE();
        return 0;
    }
    if (kind != LENET_AGENT_ENC_RUNS || len < 2u) return -1;
    const int8_t background = (int8_t)NEXT_BYTE();
    uint32_t filled = 0;
    uint32_t used = 2;
    while (used < len) {
        const uint32_t token = NEXT_BYTE();
        used++;
        if (token < 0x80u) {
            const uint32_t count = token + 1u;
            if (filled + count > out_size) return -1;
            memset(out + filled, background, count);
            filled += count;
        } else {
            const uint32_t count = token - 0x7Fu;
            if (filled + count > out_size || used + count > len) return -1;
            for (uint32_t i = 0; i < count; i++) out[filled + i] = (int8_t)NEXT_BYTE();
            filled += count;
            used += count;
        }
    }
#undef NEXT_BYTE
    return filled == out_size ? 0 : -1;
}

int lenet_agent_decode_input(const uint8_t *data, uint32_t len, int8_t *out, uint32_t size)
{
    return decode(data, RX_ANY_SIZE, 0, len, out, size);
}

/* Decode the payload bytes [offset, offset + len) of the frame at the ring's tail. */
static int decode_request(struct lenet_agent *a, uint32_t offset, uint32_t len)
{
    const struct lenet_agent_model *m = a->model;
    return decode(a->rx, a->rx_size, rx_index(a, LENET_AGENT_HEADER_SIZE + offset), len, a->input,
                  m->input_size);
}

/* ---- streamed replies ---------------------------------------------------------------- */

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

static void tx_bytes(struct lenet_agent *a, const uint8_t *data, uint32_t len)
{
    uint32_t crc = a->tx_crc;
    for (uint32_t i = 0; i < len; i++) crc = crc32_raw_byte(crc, data[i]);
    a->tx_crc = crc;
    a->io->write(a->io->ctx, data, len);
}

/* Header of a reply of `len` payload bytes; the payload follows with tx_bytes. */
static void tx_begin(struct lenet_agent *a, uint32_t type, uint32_t seq, uint32_t len)
{
    uint8_t head[LENET_AGENT_HEADER_SIZE];
    head[0] = LENET_AGENT_SYNC0;
    head[1] = LENET_AGENT_SYNC1;
    head[2] = (uint8_t)type;
    put_u16(head + 3, seq);
    put_u16(head + 5, len);
    head[7] = lenet_agent_crc8(head + 2, 5);
    a->tx_crc = 0xFFFFFFFFu;
    for (uint32_t i = 2; i < 7u; i++) a->tx_crc = crc32_raw_byte(a->tx_crc, head[i]);
    a->io->write(a->io->ctx, head, sizeof head);
}

static void tx_end(struct lenet_agent *a)
{
    uint8_t crc[4];
    put_u32(crc, ~a->tx_crc);
    a->io->write(a->io->ctx, crc, 4);
}

static void tx_byte(struct lenet_agent *a, uint32_t byte)
{
    const uint8_t b = (uint8_t)byte;
    tx_bytes(a, &b, 1);
}

/* The n low bytes of v, little-endian. */
static void tx_le(struct lenet_agent *a, uint32_t v, uint32_t n)
{
    uint8_t b[4];
    put_u32(b, v);
    tx_bytes(a, b, n);
}

static void send_status(struct lenet_agent *a, uint32_t type, uint32_t seq, uint32_t status)
{
    tx_begin(a, type, seq, 1);
    tx_byte(a, status);
    tx_end(a);
}

/* ---- INFO: key=value lines, measured first, then sent ------------------------------- */

/* The text is written twice: once to measure it (its length, and its CRC in tx_crc, which
 * no reply uses yet), then to send the part [from, to) of it. */
struct lenet_agent_info {
    struct lenet_agent *agent;
    uint32_t len;      /* text bytes so far */
    int sending;       /* 0: only measure */
    uint32_t from, to; /* sending: the text bytes that go out */
};

static void info_put(struct lenet_agent_info *w, const char *s)
{
    struct lenet_agent *a = w->agent;
    const uint32_t n = (uint32_t)strlen(s);
    const uint32_t room = a->max_payload - 1u - w->len;
    const uint32_t take = n < room ? n : room;
    if (!w->sending) {
        for (uint32_t i = 0; i < take; i++) a->tx_crc = crc32_raw_byte(a->tx_crc, (uint8_t)s[i]);
    } else if (w->len + take > w->from && w->len < w->to) {
        const uint32_t lo = w->from > w->len ? w->from - w->len : 0u;
        const uint32_t hi = w->to - w->len < take ? w->to - w->len : take;
        tx_bytes(a, (const uint8_t *)s + lo, hi - lo);
    }
    w->len += take;
}

static void format_uint(char *buf, uint32_t v)
{
    char digits[11];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    while (n) *buf++ = digits[--n];
    *buf = '\0';
}

void lenet_agent_info_text(struct lenet_agent_info *w, const char *key, const char *value)
{
    info_put(w, key);
    info_put(w, "=");
    info_put(w, value ? value : "unknown");
    info_put(w, "\n");
}

void lenet_agent_info_uint(struct lenet_agent_info *w, const char *key, uint32_t value)
{
    char buf[12];
    format_uint(buf, value);
    lenet_agent_info_text(w, key, buf);
}

void lenet_agent_info_int(struct lenet_agent_info *w, const char *key, int32_t value)
{
    char buf[13];
    if (value < 0) {
        buf[0] = '-';
        format_uint(buf + 1, (uint32_t)(-(value + 1)) + 1u);
    } else {
        format_uint(buf, (uint32_t)value);
    }
    lenet_agent_info_text(w, key, buf);
}

/* Whether io->keys has an entry named `key` (it then replaces the standard one). */
static int in_keys(const struct lenet_agent_io *io, const char *key)
{
    for (uint32_t i = 0; io->keys && i < io->key_count; i++) {
        if (strcmp(io->keys[i].key, key) == 0) return 1;
    }
    return 0;
}

/* The INFO keys (PROTOCOL.md), then the I/O's own (io->info_keys); the values that change
 * while the agent runs are those read by info_hold. */
static void info_keys(struct lenet_agent_info *w)
{
    const struct lenet_agent *a = w->agent;
    const struct lenet_agent_io *io = a->io;
    const struct lenet_agent_model *m = a->model;
    lenet_agent_info_uint(w, "protocol", LENET_AGENT_PROTOCOL_VERSION);
    lenet_agent_info_text(w, "firmware", io->firmware);
    lenet_agent_info_text(w, "board", io->board);
    lenet_agent_info_text(w, "cpu", io->cpu);
    /* The clock and counter facts, unless io->keys gives them (a device that measures
     * them at start-up keeps its io table constant and points keys at the results). */
    if (!in_keys(io, "clock_hz")) lenet_agent_info_uint(w, "clock_hz", io->clock_hz);
    if (!in_keys(io, "counter_unit")) lenet_agent_info_text(w, "counter_unit", io->counter_unit);
    if (!in_keys(io, "counter_hz")) lenet_agent_info_uint(w, "counter_hz", io->counter_hz);
    if (!in_keys(io, "counter_resolution"))
        lenet_agent_info_uint(w, "counter_resolution", io->counter_resolution);
    lenet_agent_info_uint(w, "uart_baud", io->uart_baud);
    lenet_agent_info_uint(w, "rx_buffer", a->rx_size - 1u + io->rx_buffer_extra);
    lenet_agent_info_uint(w, "max_payload", a->max_payload);
    lenet_agent_info_text(w, "model_hash", m->hash);
    lenet_agent_info_uint(w, "input_size", m->input_size);
    lenet_agent_info_uint(w, "output_size", m->output_size);
    lenet_agent_info_text(w, "input_scale", m->input_scale);
    lenet_agent_info_int(w, "input_zero_point", m->input_zero_point);
    lenet_agent_info_text(w, "output_scale", m->output_scale);
    lenet_agent_info_int(w, "output_zero_point", m->output_zero_point);
    lenet_agent_info_uint(w, "arena_bytes", m->arena_bytes);
    lenet_agent_info_uint(w, "traced_tensors", m->traced_tensors);
    lenet_agent_info_uint(w, "stack_used", a->held.info.stack_used);
    lenet_agent_info_uint(w, "rx_dropped", a->held.info.rx_dropped);
    lenet_agent_info_uint(w, "frames_ok", a->held.info.frames_ok);
    lenet_agent_info_uint(w, "frames_bad", a->held.info.frames_bad);
    lenet_agent_info_uint(w, "garbage_bytes", a->held.info.garbage_bytes);
    lenet_agent_info_uint(w, "uptime_ms", a->held.info.uptime_ms);
    if (io->info_keys) io->info_keys(io->ctx, w);
    for (uint32_t i = 0; io->keys && i < io->key_count; i++) {
        const struct lenet_agent_key *k = &io->keys[i];
        if (k->number) {
            lenet_agent_info_uint(w, k->key, *k->number);
        } else if (k->text) {
            lenet_agent_info_text(w, k->key, *k->text ? *k->text : "unknown");
        }
    }
}

/* Read the values of INFO that change while the agent runs. */
static void info_hold(struct lenet_agent *a)
{
    const struct lenet_agent_io *io = a->io;
    a->held.info.stack_used = io->stack_used ? io->stack_used(io->ctx) : 0u;
    a->held.info.rx_dropped = a->rx_lost + (io->rx_dropped ? io->rx_dropped(io->ctx) : 0u);
    a->held.info.uptime_ms = io->millis(io->ctx);
    a->held.info.frames_ok = a->frames_ok;
    a->held.info.frames_bad = a->frames_bad;
    a->held.info.garbage_bytes = a->garbage_bytes;
}

/* INFO (the whole text, values read now) or INFO_CHUNK (`max_chunk` bytes of the text from
 * `offset`, values read at the first request of its tag: every chunk of one tag comes
 * from the same text, whose size and CRC each chunk's reply carries). */
static void handle_info(struct lenet_agent *a, uint32_t type, uint32_t seq, uint32_t len)
{
    struct lenet_agent_info w = {a, 0, 0, 0, 0};
    uint32_t tag = 0, max_chunk = 0;
    if (type == LENET_AGENT_INFO_CHUNK) {
        if (len < LENET_AGENT_INFO_CHUNK_REQUEST) {
            send_status(a, type | LENET_AGENT_RESPONSE, seq, LENET_AGENT_BAD_LENGTH);
            return;
        }
        tag = rx_at(a, LENET_AGENT_HEADER_SIZE);
        w.from = (uint32_t)rx_at(a, LENET_AGENT_HEADER_SIZE + 1u) |
                 ((uint32_t)rx_at(a, LENET_AGENT_HEADER_SIZE + 2u) << 8);
        max_chunk = (uint32_t)rx_at(a, LENET_AGENT_HEADER_SIZE + 3u) |
                    ((uint32_t)rx_at(a, LENET_AGENT_HEADER_SIZE + 4u) << 8);
        if (max_chunk > a->max_payload - LENET_AGENT_INFO_CHUNK_HEAD) {
            max_chunk = a->max_payload - LENET_AGENT_INFO_CHUNK_HEAD;
        }
    }
    if (tag == 0u || tag != a->info_tag) info_hold(a);
    a->info_tag = (uint8_t)tag;
    a->tx_crc = 0xFFFFFFFFu;
    info_keys(&w); /* measures: w.len, the text's CRC in tx_crc */
    const uint32_t size = w.len, text_crc = ~a->tx_crc;
    w.to = size;
    if (type == LENET_AGENT_INFO_CHUNK) {
        if (w.from > size) w.from = size;
        if (w.to - w.from > max_chunk) w.to = w.from + max_chunk;
        tx_begin(a, type | LENET_AGENT_RESPONSE, seq, LENET_AGENT_INFO_CHUNK_HEAD + w.to - w.from);
        tx_le(a, LENET_AGENT_OK | tag << 8 | size << 16, 4); /* status, tag, size u16 */
        tx_le(a, text_crc, 4);
        tx_le(a, w.from, 2);
    } else {
        tx_begin(a, type | LENET_AGENT_RESPONSE, seq, 1u + size);
        tx_byte(a, LENET_AGENT_OK);
    }
    w.len = 0;
    w.sending = 1;
    info_keys(&w);
    tx_end(a);
}

/* ---- INFER ------------------------------------------------------------------------------ */

/* status, hash4, input crc, count: the head of INFER and TRACE replies. */
static void tx_result_head(struct lenet_agent *a, uint32_t in_crc, uint32_t count)
{
    uint8_t head[LENET_AGENT_RESULT_HEAD];
    head[0] = LENET_AGENT_OK;
    memcpy(head + 1, a->hash4, 4);
    put_u32(head + 5, in_crc);
    put_u32(head + 9, count);
    tx_bytes(a, head, sizeof head);
}

static uint32_t input_crc(const struct lenet_agent *a)
{
    return lenet_agent_crc32(0, (const uint8_t *)a->input, a->model->input_size);
}

static void handle_infer(struct lenet_agent *a, uint32_t seq, uint32_t len)
{
    const struct lenet_agent_io *io = a->io;
    const struct lenet_agent_model *m = a->model;
    const uint32_t type = LENET_AGENT_INFER | LENET_AGENT_RESPONSE;
    if (decode_request(a, 0, len) != 0) {
        send_status(a, type, seq, LENET_AGENT_BAD_ENCODING);
        return;
    }
    /* Before the inference: the input may live in the model's arena, which it reuses. */
    const uint32_t in_crc = input_crc(a);
    const uint32_t start = io->counter(io->ctx);
    const int rc = m->invoke(a->input, m->output);
    const uint32_t elapsed = io->counter(io->ctx) - start;
    if (rc != 0) {
        send_status(a, type, seq, LENET_AGENT_INVOKE_FAILED);
        return;
    }
    tx_begin(a, type, seq, LENET_AGENT_RESULT_HEAD + m->output_size);
    tx_result_head(a, in_crc, elapsed);
    tx_bytes(a, (const uint8_t *)m->output, m->output_size);
    tx_end(a);
}

/* ---- TRACE: one chunk of one intermediate tensor, plus every layer's count -------------- */

/* Two inferences: the first measures every layer and the chosen tensor's size (so the
 * reply's length is known), the second streams the chunk straight from the model's
 * tensor into the reply: no copy of it is kept. */
static void trace_fn(void *ctx, int tensor_index, const int8_t *data, int32_t size)
{
    struct lenet_agent *a = (struct lenet_agent *)ctx;
    const struct lenet_agent_io *io = a->io;
    if (a->trace_pass == 1u) {
        const uint32_t now = io->counter(io->ctx);
        if (a->trace_calls < LENET_AGENT_MAX_LAYERS) a->held.trace_counts[a->trace_calls] = now - a->trace_last;
        if (a->trace_calls == a->trace_layer) {
            a->trace_tensor = tensor_index;
            a->trace_size = (uint32_t)size;
        }
    } else if (a->trace_calls == a->trace_layer && a->trace_chunk) {
        tx_bytes(a, (const uint8_t *)data + a->trace_offset, a->trace_chunk);
    }
    a->trace_calls++;
    /* The callback's own work is not the next op's: restart the clock after it. */
    a->trace_last = io->counter(io->ctx);
}

/* One traced inference of the request's input (decoded afresh: an input that lives in the
 * model's arena does not survive an inference). 0, or the failure's status. */
static uint32_t trace_pass(struct lenet_agent *a, uint32_t pass, uint32_t len)
{
    const struct lenet_agent_model *m = a->model;
    if (decode_request(a, LENET_AGENT_TRACE_REQUEST, len - LENET_AGENT_TRACE_REQUEST) != 0) {
        return LENET_AGENT_BAD_ENCODING;
    }
    a->trace_pass = (uint8_t)pass;
    a->trace_calls = 0;
    a->trace_last = a->io->counter(a->io->ctx);
    return m->invoke_traced(a->input, m->output, trace_fn, a) != 0 ? LENET_AGENT_INVOKE_FAILED : 0u;
}

static void handle_trace(struct lenet_agent *a, uint32_t seq, uint32_t len)
{
    const uint32_t type = LENET_AGENT_TRACE | LENET_AGENT_RESPONSE;
    const uint32_t layers = a->model->traced_tensors;
    /* status hash4 crc(4) layers layer tensor(4) size(4) offset(4), counts, chunk */
    const uint32_t head = LENET_AGENT_TRACE_HEAD + 4u * layers;
    a->info_tag = 0; /* the per-layer counts take the place of INFO's held values */
    if (len < LENET_AGENT_TRACE_REQUEST || layers > LENET_AGENT_MAX_LAYERS || head > a->max_payload) {
        send_status(a, type, seq, LENET_AGENT_BAD_LENGTH);
        return;
    }
    a->trace_layer = rx_at(a, LENET_AGENT_HEADER_SIZE);
    a->trace_offset = (uint32_t)rx_at(a, LENET_AGENT_HEADER_SIZE + 1u) |
                      ((uint32_t)rx_at(a, LENET_AGENT_HEADER_SIZE + 2u) << 8);
    uint32_t max_chunk = (uint32_t)rx_at(a, LENET_AGENT_HEADER_SIZE + 3u) |
                         ((uint32_t)rx_at(a, LENET_AGENT_HEADER_SIZE + 4u) << 8);
    if (max_chunk > a->max_payload - head) max_chunk = a->max_payload - head;
    if (a->trace_layer >= layers) {
        send_status(a, type, seq, LENET_AGENT_BAD_LAYER);
        return;
    }
    a->trace_tensor = -1;
    a->trace_size = 0;
    const uint32_t status = trace_pass(a, 1, len);
    if (status != 0u) {
        send_status(a, type, seq, status);
        return;
    }
    a->trace_chunk = 0;
    if (a->trace_offset < a->trace_size) {
        a->trace_chunk = a->trace_size - a->trace_offset;
        if (a->trace_chunk > max_chunk) a->trace_chunk = max_chunk;
    }
    /* The input's CRC before the second pass (which overwrites an input in the arena). */
    /* decoded fine in the first pass */
    (void)decode_request(a, LENET_AGENT_TRACE_REQUEST, len - LENET_AGENT_TRACE_REQUEST);
    const uint32_t in_crc = input_crc(a);
    tx_begin(a, type, seq, head + a->trace_chunk);
    /* TRACE has no single count: bytes 9.. carry layers, layer, ... (see PROTOCOL.md). */
    uint8_t buf[15];
    buf[0] = LENET_AGENT_OK;
    memcpy(buf + 1, a->hash4, 4);
    put_u32(buf + 5, in_crc);
    buf[9] = (uint8_t)layers;
    buf[10] = (uint8_t)a->trace_layer;
    put_u32(buf + 11, (uint32_t)a->trace_tensor);
    tx_bytes(a, buf, 15);
    put_u32(buf, a->trace_size);
    put_u32(buf + 4, a->trace_offset);
    tx_bytes(a, buf, 8);
    for (uint32_t i = 0; i < layers; i++) {
        put_u32(buf, a->held.trace_counts[i]);
        tx_bytes(a, buf, 4);
    }
    (void)trace_pass(a, 2, len); /* same input, same result: streams the chunk */
    tx_end(a);
}

/* ---- ECHO, RESET, dispatch --------------------------------------------------------------- */

static void handle_echo(struct lenet_agent *a, uint32_t seq, uint32_t len)
{
    const uint32_t n = len < a->max_payload ? len : a->max_payload - 1u;
    tx_begin(a, LENET_AGENT_ECHO | LENET_AGENT_RESPONSE, seq, 1u + n);
    tx_byte(a, LENET_AGENT_OK);
    /* Straight from the ring, in at most two contiguous pieces. */
    uint32_t done = 0;
    while (done < n) {
        const uint32_t at = rx_index(a, LENET_AGENT_HEADER_SIZE + done);
        uint32_t piece = a->rx_size - at;
        if (piece > n - done) piece = n - done;
        tx_bytes(a, a->rx + at, piece);
        done += piece;
    }
    tx_end(a);
}

static void dispatch(struct lenet_agent *a, uint32_t type, uint32_t seq, uint32_t len)
{
    switch (type) {
    case LENET_AGENT_INFO:
    case LENET_AGENT_INFO_CHUNK:
        handle_info(a, type, seq, len);
        break;
    case LENET_AGENT_INFER:
        handle_infer(a, seq, len);
        break;
    case LENET_AGENT_TRACE:
        handle_trace(a, seq, len);
        break;
    case LENET_AGENT_ECHO:
        handle_echo(a, seq, len);
        break;
    case LENET_AGENT_RESET:
        send_status(a, LENET_AGENT_RESET | LENET_AGENT_RESPONSE, seq, LENET_AGENT_OK);
        if (a->io->reset) a->io->reset(a->io->ctx);
        break;
    default:
        send_status(a, LENET_AGENT_ERROR, seq, LENET_AGENT_UNKNOWN_TYPE);
        break;
    }
}

/* ---- framing ------------------------------------------------------------------------------ */

/* Drop the byte at the tail and everything up to the next possible sync byte. */
static void resync(struct lenet_agent *a, uint32_t avail)
{
    uint32_t i = 1;
    while (i < avail && rx_at(a, i) != LENET_AGENT_SYNC0) i++;
    a->garbage_bytes += i;
    rx_consume(a, i);
}

static uint32_t frame_crc_ok(const struct lenet_agent *a, uint32_t len)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (uint32_t i = 2; i < 7u; i++) crc = crc32_raw_byte(crc, rx_at(a, i));
    for (uint32_t i = 0; i < len; i++) crc = crc32_raw_byte(crc, rx_at(a, LENET_AGENT_HEADER_SIZE + i));
    uint32_t got = 0;
    for (uint32_t i = 0; i < 4u; i++) got |= (uint32_t)rx_at(a, LENET_AGENT_HEADER_SIZE + len + i) << (8u * i);
    return ~crc == got;
}

int lenet_agent_poll(struct lenet_agent *a)
{
    const struct lenet_agent_io *io = a->io;
    rx_pull(a);
    uint32_t avail = rx_avail(a);
    const uint32_t now = io->millis(io->ctx);
    if (avail != a->rx_seen) a->rx_stamp_ms = now;
    a->rx_seen = avail;
    while (avail) {
        if (rx_at(a, 0) != LENET_AGENT_SYNC0) {
            resync(a, avail);
        } else if (avail >= 2u && rx_at(a, 1) != LENET_AGENT_SYNC1) {
            resync(a, avail);
        } else if (avail >= LENET_AGENT_HEADER_SIZE) {
            uint8_t crc = 0;
            for (uint32_t i = 2; i < 7u; i++) crc = crc8_byte(crc, rx_at(a, i));
            const uint32_t len = (uint32_t)rx_at(a, 5) | ((uint32_t)rx_at(a, 6) << 8);
            if (crc != rx_at(a, 7) || len > a->max_payload) {
                a->frames_bad++;
                resync(a, avail);
            } else {
                const uint32_t total = LENET_AGENT_HEADER_SIZE + len + LENET_AGENT_TRAILER_SIZE;
                if (avail < total) goto partial;
                if (!frame_crc_ok(a, len)) {
                    a->frames_bad++;
                    resync(a, avail);
                } else {
                    a->frames_ok++;
                    dispatch(a, rx_at(a, 2), (uint32_t)rx_at(a, 3) | ((uint32_t)rx_at(a, 4) << 8), len);
                    rx_consume(a, total);
                    return 1;
                }
            }
        } else {
            goto partial;
        }
        avail = rx_avail(a);
    }
    return 0;
partial:
    /* A frame has begun; drop it when its bytes stop arriving. */
    if (now - a->rx_stamp_ms >= LENET_AGENT_BYTE_TIMEOUT_MS) {
        if (avail >= LENET_AGENT_HEADER_SIZE) a->frames_bad++;
        rx_consume(a, avail);
    }
    return 0;
}

/* ---- set-up --------------------------------------------------------------------------------- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return 0;
}

int lenet_agent_init(struct lenet_agent *a, const struct lenet_agent_io *io,
                     const struct lenet_agent_model *model, uint8_t *rx, uint32_t rx_size)
{
    memset(a, 0, sizeof *a);
    if (io == NULL || model == NULL || rx == NULL || io->write == NULL || io->counter == NULL ||
        io->millis == NULL || model->invoke == NULL || model->invoke_traced == NULL ||
        (model->input == NULL && model->input_buffer == NULL) || model->output == NULL ||
        model->hash == NULL ||
        rx_size < LENET_AGENT_RX_BYTES(model->input_size) || rx_size > 0x10000u) {
        return 0;
    }
    a->io = io;
    a->model = model;
    a->input = model->input != NULL ? model->input : model->input_buffer();
    if (a->input == NULL) return 0;
    a->rx = rx;
    /* Every accepted frame fits in the ring (which keeps one slot empty). */
    a->max_payload = rx_size - 1u - LENET_AGENT_HEADER_SIZE - LENET_AGENT_TRAILER_SIZE;
    if (a->max_payload > 0xFFFFu) a->max_payload = 0xFFFFu;
    for (int i = 0; i < 4 && model->hash[2 * i] && model->hash[2 * i + 1]; i++) {
        a->hash4[i] = (uint8_t)((hex_value(model->hash[2 * i]) << 4) | hex_value(model->hash[2 * i + 1]));
    }
    a->rx_stamp_ms = io->millis(io->ctx);
    /* Last: from here on lenet_agent_rx_push (maybe in an interrupt) uses the ring. */
    *(volatile uint32_t *)&a->rx_size = rx_size;
    return 1;
}

void lenet_agent_banner(struct lenet_agent *a)
{
    const struct lenet_agent_io *io = a->io;
    const char *parts[3] = {io->firmware, io->board, io->cpu};
    io->write(io->ctx, (const uint8_t *)"lenet-edge", 10);
    for (int i = 0; i < 3; i++) {
        const char *s = parts[i] ? parts[i] : "unknown";
        io->write(io->ctx, (const uint8_t *)" ", 1);
        io->write(io->ctx, (const uint8_t *)s, (uint32_t)strlen(s));
    }
    io->write(io->ctx, (const uint8_t *)"\r\n", 2);
}
