/*
 * lenet_agent.h - the lenet-edge validation agent: the device side of the serial
 * protocol (docs/PROTOCOL.md, also shipped as PROTOCOL.md beside this file), as a library.
 *
 * It knows no board and has no main loop. You give it
 *   - a small I/O interface (struct lenet_agent_io): write bytes, a free-running counter
 *     with its unit and rate, milliseconds; received bytes either pulled with a
 *     non-blocking read() or pushed from your receive interrupt with lenet_agent_rx_push();
 *   - the model (struct lenet_agent_model, filled by LENET_AGENT_MODEL from the generated
 *     NAME_model.h);
 *   - a receive ring (LENET_AGENT_RX_BYTES(input_size) bytes are enough for every request),
 * and call lenet_agent_poll() from your own loop or RTOS task: it answers at most one
 * request and returns. `lenet-edge validate --port ...` then checks your firmware.
 *
 * No heap, no global state (every agent's state is its struct lenet_agent), C99. Replies are
 * streamed through write() with their CRC computed on the fly, so there is no transmit
 * buffer. Not reentrant: call poll() from one thread; lenet_agent_rx_push() may run in an
 * interrupt (one producer, one consumer).
 */
#ifndef LENET_AGENT_H
#define LENET_AGENT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LENET_AGENT_PROTOCOL_VERSION 1

/* Frame: A5 5A | type | seq u16 | len u16 | hcrc8 | payload | crc32 (little-endian). */
#define LENET_AGENT_SYNC0 0xA5u
#define LENET_AGENT_SYNC1 0x5Au
#define LENET_AGENT_HEADER_SIZE 8u
#define LENET_AGENT_TRAILER_SIZE 4u

/* Request types; a response carries type | LENET_AGENT_RESPONSE. */
#define LENET_AGENT_INFO 0x01u
#define LENET_AGENT_INFER 0x02u
#define LENET_AGENT_TRACE 0x03u
#define LENET_AGENT_ECHO 0x04u
#define LENET_AGENT_RESET 0x05u
#define LENET_AGENT_INFO_CHUNK 0x06u /* INFO's text in chunks, from one frozen snapshot */
#define LENET_AGENT_RESPONSE 0x80u
#define LENET_AGENT_ERROR 0xFFu

/* Status: first byte of every response payload. */
#define LENET_AGENT_OK 0u
#define LENET_AGENT_BAD_LENGTH 1u
#define LENET_AGENT_BAD_ENCODING 2u
#define LENET_AGENT_INVOKE_FAILED 3u
#define LENET_AGENT_BAD_LAYER 4u
#define LENET_AGENT_UNKNOWN_TYPE 5u

/* Fixed parts of messages, in bytes (PROTOCOL.md, "Messages"; host/protocol.py has the
 * same, tests/test_protocol_constants.py compares them).
 * INFER/TRACE reply head: status, hash4[4], in_crc u32, then count u32 (INFER) or
 * layers u8, layer u8, tensor i32, size u32, offset u32 (TRACE), then counts u32[layers]. */
#define LENET_AGENT_RESULT_HEAD 13u
#define LENET_AGENT_TRACE_HEAD 23u
/* TRACE request: layer u8, offset u16, max_chunk u16, then the encoded input. */
#define LENET_AGENT_TRACE_REQUEST 5u
/* INFO_CHUNK request: tag u8, offset u16, max_chunk u16; reply head: status, tag u8,
 * size u16, text_crc u32, offset u16, then the chunk. */
#define LENET_AGENT_INFO_CHUNK_REQUEST 5u
#define LENET_AGENT_INFO_CHUNK_HEAD 10u

/* Input encodings. */
#define LENET_AGENT_ENC_RAW 0u
#define LENET_AGENT_ENC_RUNS 1u
#define LENET_AGENT_ENC_PIXELS 2u /* arithmetic-coded against neighbours (PROTOCOL.md) */

/* Milliseconds without a byte before a partial frame is dropped. */
#ifndef LENET_AGENT_BYTE_TIMEOUT_MS
#define LENET_AGENT_BYTE_TIMEOUT_MS 500u
#endif

/* Traced tensors per inference that TRACE can report (4 bytes of state each). */
#ifndef LENET_AGENT_MAX_LAYERS
#define LENET_AGENT_MAX_LAYERS 16u
#endif

/* The payload room every agent offers at least: the ring also sets max_payload, which
 * bounds INFO's answer (about 650 bytes of keys), so a model with a small input (zip1989's
 * 256 bytes) still gets its whole INFO out. 784 + 6 (a 28x28 model's TRACE) is above it,
 * so those rings are unchanged. */
#define LENET_AGENT_MIN_PAYLOAD 784u

/* Receive ring bytes that hold the longest request (a TRACE with a raw input), plus the
 * one slot a ring keeps empty. A larger ring lets the host keep more requests in flight. */
#define LENET_AGENT_RX_PAYLOAD(input_size)                                                  \
    ((uint32_t)(input_size) + LENET_AGENT_TRACE_REQUEST + 1u > LENET_AGENT_MIN_PAYLOAD       \
         ? (uint32_t)(input_size) + LENET_AGENT_TRACE_REQUEST + 1u                           \
         : LENET_AGENT_MIN_PAYLOAD)
#define LENET_AGENT_RX_BYTES(input_size)                                                    \
    (LENET_AGENT_RX_PAYLOAD(input_size) + LENET_AGENT_HEADER_SIZE + LENET_AGENT_TRAILER_SIZE + 1u)

/* ---- the model ------------------------------------------------------------------ */

typedef void (*lenet_agent_trace_fn)(void *ctx, int tensor_index, const int8_t *data, int32_t size);

struct lenet_agent_model {
    const char *hash;          /* NAME_MODEL_HASH: sha256 hex of the .tflite */
    uint32_t input_size;       /* NAME_INPUT_SIZE */
    uint32_t output_size;      /* NAME_OUTPUT_SIZE */
    const char *input_scale;   /* the C literal of NAME_INPUT_SCALE, as text */
    int32_t input_zero_point;
    const char *output_scale;
    int32_t output_zero_point;
    uint32_t arena_bytes;
    uint32_t traced_tensors;   /* NAME_NUM_TRACED_TENSORS */
    int (*invoke)(const int8_t *input, int8_t *output);
    int (*invoke_traced)(const int8_t *input, int8_t *output, lenet_agent_trace_fn fn, void *ctx);
    /* Where requests are decoded: input_size bytes (your buffer, or NAME_input_buffer(),
     * the model's own arena slot, which saves that RAM), and output_size bytes. */
    int8_t *input;
    int8_t *output;
    /* Or, with input NULL: the function giving the model's arena slot, asked once by
     * lenet_agent_init (so this struct can stay const, in flash). */
    int8_t *(*input_buffer)(void);
};

#define LENET_AGENT_XSTR(x) LENET_AGENT_STR(x)
#define LENET_AGENT_STR(x) #x

/* Initializer of a struct lenet_agent_model from a generated model header, e.g.
 *   static int8_t out[LENET5_OUTPUT_SIZE];
 *   static const struct lenet_agent_model model =
 *       LENET_AGENT_MODEL(lenet5, LENET5, lenet5_input_buffer(), out);   (C: at run time)
 * (`name` is the export's --name, `NAME` the same in capitals.) */
#define LENET_AGENT_MODEL(name, NAME, input_buf, output_buf)                                   \
    {                                                                                         \
        NAME##_MODEL_HASH, NAME##_INPUT_SIZE, NAME##_OUTPUT_SIZE,                              \
            LENET_AGENT_XSTR(NAME##_INPUT_SCALE), (int32_t)(NAME##_INPUT_ZERO_POINT),          \
            LENET_AGENT_XSTR(NAME##_OUTPUT_SCALE), (int32_t)(NAME##_OUTPUT_ZERO_POINT),        \
            NAME##_ARENA_BYTES, NAME##_NUM_TRACED_TENSORS, name##_invoke, name##_invoke_traced, \
            (input_buf), (output_buf), 0                                                      \
    }

/* The same, decoding requests straight into the model's own arena slot (NAME_input_buffer):
 * no input buffer, and a constant initializer. */
#define LENET_AGENT_MODEL_IN_ARENA(name, NAME, output_buf)                                     \
    {                                                                                         \
        NAME##_MODEL_HASH, NAME##_INPUT_SIZE, NAME##_OUTPUT_SIZE,                              \
            LENET_AGENT_XSTR(NAME##_INPUT_SCALE), (int32_t)(NAME##_INPUT_ZERO_POINT),          \
            LENET_AGENT_XSTR(NAME##_OUTPUT_SCALE), (int32_t)(NAME##_OUTPUT_ZERO_POINT),        \
            NAME##_ARENA_BYTES, NAME##_NUM_TRACED_TENSORS, name##_invoke, name##_invoke_traced, \
            0, (output_buf), name##_input_buffer                                              \
    }

/* ---- the I/O interface ------------------------------------------------------------ */

struct lenet_agent_info; /* the INFO reply being written, for info_keys below */

/* An extra INFO key (struct lenet_agent_io.keys): its value is read at each INFO from
 * `*number`, or the text at `*text` (set exactly one). */
struct lenet_agent_key {
    const char *key;
    const uint32_t *number;
    const char *const *text;
};

struct lenet_agent_io {
    void *ctx; /* passed to every function below */
    /* Non-blocking: copy up to max received bytes to buf, return how many (0: none now).
     * NULL when your receive interrupt calls lenet_agent_rx_push() instead. */
    uint32_t (*read)(void *ctx, uint8_t *buf, uint32_t max);
    /* Send len bytes (may block until the transmitter has taken them). */
    void (*write)(void *ctx, const uint8_t *data, uint32_t len);
    /* Free-running counter, wraps at 2^32; inferences are measured with it. */
    uint32_t (*counter)(void *ctx);
    const char *counter_unit;    /* "cycles", "microseconds", "guest_instructions", ... */
    uint32_t counter_hz;         /* counter steps per second */
    uint32_t counter_resolution; /* the step the counter really moves by (1 for a cycle counter) */
    /* Milliseconds since start (wraps at 2^32): partial-frame timeout and uptime. */
    uint32_t (*millis)(void *ctx);

    /* Optional (NULL when absent). */
    uint32_t (*stack_used)(void *ctx);  /* deepest stack use so far, bytes (INFO stack_used) */
    uint32_t (*rx_dropped)(void *ctx);  /* bytes your driver lost (added to INFO rx_dropped) */
    void (*reset)(void *ctx);           /* RESET: called after the answer is written */
    /* Extra INFO lines: call lenet_agent_info_text/_uint for each key=value. Called twice
     * per INFO reply (once to measure it, once to send it): write the same every time
     * (the host reads INFO in chunks and checks that they come from one text). */
    void (*info_keys)(void *ctx, struct lenet_agent_info *info);
    /* Extra INFO keys read where their values live (no callback, so the table can sit in
     * flash and nothing is called back from inside the agent): `key_count` entries. An
     * entry named clock_hz, counter_unit, counter_hz or counter_resolution replaces the
     * field above (for values measured at start-up, with this struct kept const). */
    const struct lenet_agent_key *keys;
    uint32_t key_count;

    /* What INFO reports about the device (NULL strings are sent as "unknown"). */
    const char *firmware;
    const char *board;
    const char *cpu;
    uint32_t clock_hz;
    uint32_t uart_baud;
    uint32_t rx_buffer_extra; /* bytes your driver buffers before the agent (its ring) */
};

/* ---- the agent -------------------------------------------------------------------- */

struct lenet_agent {
    const struct lenet_agent_io *io;
    const struct lenet_agent_model *model;
    int8_t *input;              /* model->input, or what model->input_buffer() gave */
    uint8_t *rx;                /* receive ring: frames are parsed in place */
    uint32_t rx_size;
    volatile uint32_t rx_head;  /* next write index (the producer: read() or rx_push) */
    volatile uint32_t rx_tail;  /* first unconsumed byte (the consumer: poll) */
    volatile uint32_t rx_lost;  /* bytes pushed while the ring was full */
    uint32_t rx_seen;           /* bytes available at the last poll */
    uint32_t rx_stamp_ms;       /* when the last byte arrived */
    uint32_t max_payload;
    uint32_t frames_ok, frames_bad, garbage_bytes;
    uint8_t hash4[4];
    uint32_t tx_crc; /* running CRC-32 of the reply being written */
    /* Never needed at once, so they share RAM: TRACE's per-layer counts of its first pass,
     * and INFO's changing values, read once per INFO and kept for the chunks of the same
     * tag (info_tag; 0: none kept), so that every chunk comes from one text. */
    union {
        uint32_t trace_counts[LENET_AGENT_MAX_LAYERS];
        struct {
            uint32_t stack_used, rx_dropped, uptime_ms, frames_ok, frames_bad, garbage_bytes;
        } info;
    } held;
    uint32_t trace_calls, trace_last, trace_layer, trace_offset, trace_chunk, trace_size;
    int32_t trace_tensor;
    uint8_t trace_pass;
    uint8_t info_tag;
};

/* Set up an agent; rx must stay valid (LENET_AGENT_RX_BYTES(model->input_size) or more;
 * a smaller ring gets 0 back, unusable). io and model must outlive the agent.
 * Returns 1 on success, 0 on a missing function or a ring too small. */
int lenet_agent_init(struct lenet_agent *agent, const struct lenet_agent_io *io,
                     const struct lenet_agent_model *model, uint8_t *rx, uint32_t rx_size);

/* Write the boot line "lenet-edge <firmware> <board> <cpu>\r\n": the host recognises it
 * as a device reset (and resends what was in flight). Call it once at start-up. */
void lenet_agent_banner(struct lenet_agent *agent);

/* Hand over one received byte (e.g. from your UART receive interrupt). */
void lenet_agent_rx_push(struct lenet_agent *agent, uint8_t byte);

/* Take received bytes (read() if given), answer at most one complete request, return.
 * Returns 1 when a request was answered, 0 when there was nothing (yet) to do: then
 * sleep or do other work until more bytes arrive. */
int lenet_agent_poll(struct lenet_agent *agent);

/* For info_keys: append "key=value\n". */
void lenet_agent_info_text(struct lenet_agent_info *info, const char *key, const char *value);
void lenet_agent_info_uint(struct lenet_agent_info *info, const char *key, uint32_t value);
void lenet_agent_info_int(struct lenet_agent_info *info, const char *key, int32_t value);

/* The protocol's CRCs (shared with the host): CRC-8 poly 0x07 init 0; CRC-32 as zlib. */
uint8_t lenet_agent_crc8(const uint8_t *data, uint32_t len);
uint32_t lenet_agent_crc32(uint32_t crc, const uint8_t *data, uint32_t len);

/* Decode an encoded input (raw, runs or pixels, see PROTOCOL.md) into out[size]; 0 on
 * success. Pixels are coded relative to the model's input zero point: _zp takes it
 * (lenet_agent_decode_input assumes 0). */
int lenet_agent_decode_input(const uint8_t *data, uint32_t len, int8_t *out, uint32_t size);
int lenet_agent_decode_input_zp(const uint8_t *data, uint32_t len, int8_t *out, uint32_t size,
                                int32_t zero_point);

#ifdef __cplusplus
}
#endif

#endif /* LENET_AGENT_H */
