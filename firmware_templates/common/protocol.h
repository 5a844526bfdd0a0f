/*
 * protocol.h - the lenet-edge serial protocol, device side (spec: docs/PROTOCOL.md).
 *
 * protocol_serve() reads framed requests from the UART (board.h), runs the generated
 * model (lenet5_model.h) and answers; it never returns. Host side:
 * lenet_edge/host/protocol.py.
 */
#ifndef LENET_EDGE_PROTOCOL_H
#define LENET_EDGE_PROTOCOL_H

#include <stdint.h>

#define PROTOCOL_VERSION 1

/* Frame: A5 5A | type | seq u16 | len u16 | hcrc8 | payload | crc32 (little-endian). */
#define PROTO_SYNC0 0xA5u
#define PROTO_SYNC1 0x5Au
#define PROTO_HEADER_SIZE 8u
#define PROTO_TRAILER_SIZE 4u

/* Request types; a response carries type | PROTO_RESPONSE. */
#define PROTO_INFO 0x01u
#define PROTO_INFER 0x02u
#define PROTO_TRACE 0x03u
#define PROTO_ECHO 0x04u
#define PROTO_RESET 0x05u
#define PROTO_RESPONSE 0x80u
#define PROTO_ERROR 0xFFu

/* Status: first byte of every response payload. */
#define PROTO_OK 0u
#define PROTO_BAD_LENGTH 1u
#define PROTO_BAD_ENCODING 2u
#define PROTO_INVOKE_FAILED 3u
#define PROTO_BAD_LAYER 4u
#define PROTO_UNKNOWN_TYPE 5u

/* Input encodings. */
#define PROTO_ENC_RAW 0u
#define PROTO_ENC_RUNS 1u

/* Milliseconds between two bytes of one frame before the frame is dropped. */
#ifndef PROTO_BYTE_TIMEOUT_MS
#define PROTO_BYTE_TIMEOUT_MS 500u
#endif

/* CRCs shared with the host (protocol.py): CRC-8 poly 0x07; CRC-32 as zlib. */
uint8_t protocol_crc8(const uint8_t *data, uint32_t len);
uint32_t protocol_crc32(uint32_t crc, const uint8_t *data, uint32_t len);

/* Decode an encoded input into out[size]; 0 on success. */
int protocol_decode_input(const uint8_t *data, uint32_t len, int8_t *out, uint32_t size);

/* Serve requests forever. */
void protocol_serve(void) __attribute__((noreturn));

#endif /* LENET_EDGE_PROTOCOL_H */
