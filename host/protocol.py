"""The lenet-edge serial protocol, host side: frames, input coding, message payloads.

docs/PROTOCOL.md is the specification; firmware_templates/agent/lenet_agent.c is the device
side (tests/test_protocol_constants.py checks that its header's constants are these). This module has no I/O: it turns messages into bytes and bytes back into frames,
so it can be tested on its own and reused by the session, the fault proxy and the tests.

Frame layout (little-endian)::

    A5 5A | type u8 | seq u16 | len u16 | hcrc u8 | payload[len] | crc u32

``hcrc`` is CRC-8 (poly 0x07) of type..len, so a corrupted length is caught before the
receiver waits for a payload that never comes; ``crc`` is CRC-32 (zlib's) of
type..payload.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

SYNC = b"\xa5\x5a"
HEADER_SIZE = 8  # sync(2) type(1) seq(2) len(2) hcrc(1)
TRAILER_SIZE = 4
OVERHEAD = HEADER_SIZE + TRAILER_SIZE
PROTOCOL_VERSION = 1
# Largest payload any device accepts; a device may announce a larger one in INFO.
MIN_MAX_PAYLOAD = 1024

# Message types (requests; a response has the request's type | 0x80).
INFO = 0x01
INFER = 0x02
TRACE = 0x03
ECHO = 0x04
RESET = 0x05
INFO_CHUNK = 0x06  # INFO's text in chunks, all from one snapshot of its values
RESPONSE = 0x80
ERROR = 0xFF  # response to a request the device could not even parse (unknown type)

# Status byte, first byte of every response payload.
STATUS_OK = 0
STATUS_TEXT = {
    0: "ok",
    1: "bad request length",
    2: "bad input encoding",
    3: "inference failed",
    4: "no such layer",
    5: "unknown message type",
}

# Input encodings (first byte of an encoded input).
ENC_RAW = 0
ENC_RUNS = 1
ENC_PIXELS = 2  # the range-coded form (host/pixel_coder.py)
MAX_RUN = 128


def crc8(data: bytes) -> int:
    """CRC-8, polynomial 0x07, init 0 (the header check)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


_CRC8_TABLE = bytes(crc8(bytes([i])) for i in range(256))


def _crc8_fast(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = _CRC8_TABLE[crc ^ byte]
    return crc


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def encode_frame(msg_type: int, seq: int, payload: bytes = b"") -> bytes:
    if len(payload) > 0xFFFF:
        raise ValueError("payload too long for one frame")
    head = struct.pack("<BHH", msg_type, seq & 0xFFFF, len(payload))
    body = head + payload
    return SYNC + head + bytes([_crc8_fast(head)]) + payload + struct.pack("<I", crc32(body))


@dataclass(frozen=True)
class Frame:
    type: int
    seq: int
    payload: bytes


@dataclass
class DeframerStats:
    frames: int = 0
    header_errors: int = 0
    crc_errors: int = 0
    garbage_bytes: int = 0


class Deframer:
    """Incremental parser: feed bytes, get frames; skips anything that is not a frame.

    After a bad header or CRC it resumes the search one byte after the failed sync, so a
    frame hidden inside a corrupted one is still found. Bytes that belong to no frame
    are kept (``take_garbage``) so the caller can show them or spot a boot banner.
    """

    def __init__(self, max_payload: int = MIN_MAX_PAYLOAD):
        # A damaged header passes its CRC-8 about once in 256 times; the length cap keeps
        # such a false header from making the parser wait for kilobytes (see `give_up_partial`).
        self.max_payload = max_payload
        self._buf = bytearray()
        self._garbage = bytearray()
        self.stats = DeframerStats()

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames = []
        buf = self._buf
        pos = 0
        while True:
            start = buf.find(SYNC, pos)
            if start < 0:
                # Keep a trailing A5 that is not part of a frame already taken (e.g. the
                # last byte of its CRC): it may be the first half of the next sync.
                keep = max(pos, len(buf) - 1) if buf.endswith(SYNC[:1]) else len(buf)
                self._skip(buf, pos, keep)
                pos = keep
                break
            self._skip(buf, pos, start)
            pos = start
            if len(buf) - start < HEADER_SIZE:
                break
            head = bytes(buf[start + 2 : start + 7])
            msg_type, seq, length = struct.unpack("<BHH", head)
            if _crc8_fast(head) != buf[start + 7] or length > self.max_payload:
                self.stats.header_errors += 1
                self._skip(buf, start, start + 1)
                pos = start + 1
                continue
            end = start + HEADER_SIZE + length + TRAILER_SIZE
            if len(buf) < end:
                break
            payload = bytes(buf[start + HEADER_SIZE : end - TRAILER_SIZE])
            (crc,) = struct.unpack_from("<I", buf, end - TRAILER_SIZE)
            if crc != crc32(head + payload):
                self.stats.crc_errors += 1
                self._skip(buf, start, start + 1)
                pos = start + 1
                continue
            self.stats.frames += 1
            frames.append(Frame(msg_type, seq, payload))
            pos = end
        del buf[:pos]
        return frames

    def in_frame(self) -> bool:
        """A frame whose header passed its CRC is arriving (its payload not complete)."""
        return self._buf.startswith(SYNC) and len(self._buf) >= HEADER_SIZE

    def give_up_partial(self) -> bool:
        """Stop waiting for the rest of a frame whose header looked valid, if an intact
        frame has arrived behind its start: then that header was a false one (a damaged
        header passes CRC-8 about once in 256) and the real frames are already here. A
        partial frame with nothing intact behind it may be a real answer from a slow
        device (QEMU on a loaded host stalls mid-frame): it is kept. The next `feed` (even
        of no bytes) searches again from one byte past its sync. True if it gave up."""
        if not self.in_frame() or not self._intact_frame_from(1):
            return False
        self.stats.header_errors += 1
        self._skip(self._buf, 0, 1)
        del self._buf[:1]
        return True

    def _intact_frame_from(self, pos: int) -> bool:
        buf = self._buf
        while (start := buf.find(SYNC, pos)) >= 0 and len(buf) - start >= HEADER_SIZE:
            head = bytes(buf[start + 2 : start + 7])
            length = struct.unpack("<BHH", head)[2]
            end = start + HEADER_SIZE + length + TRAILER_SIZE
            if _crc8_fast(head) == buf[start + 7] and length <= self.max_payload and end <= len(buf):
                (crc,) = struct.unpack_from("<I", buf, end - TRAILER_SIZE)
                if crc == crc32(head + bytes(buf[start + HEADER_SIZE : end - TRAILER_SIZE])):
                    return True
            pos = start + 1
        return False

    def _skip(self, buf: bytearray, start: int, end: int) -> None:
        if end > start:
            self._garbage += buf[start:end]
            self.stats.garbage_bytes += end - start

    def take_garbage(self) -> bytes:
        out = bytes(self._garbage)
        self._garbage.clear()
        return out


# --- input coding -------------------------------------------------------------------


def encode_input(values: np.ndarray) -> bytes:
    """Lossless coding of one int8 input: runs of the most common byte, else raw.

    MNIST digits are ~80 % background (pixel 0 -> int8 -128), so runs shrink a 784-byte
    digit to ~190 bytes on average. Tokens: 0x00-0x7F = (t+1) background bytes,
    0x80-0xFF = (t-0x7F) literal bytes follow.
    """
    raw = np.ascontiguousarray(values, dtype=np.int8).reshape(-1).view(np.uint8).tobytes()
    if not raw:
        return bytes([ENC_RAW])
    background = int(np.bincount(np.frombuffer(raw, np.uint8), minlength=256).argmax())
    out = bytearray([ENC_RUNS, background])
    i, n = 0, len(raw)
    while i < n:
        j = i
        if raw[i] == background:
            while j < n and raw[j] == background and j - i < MAX_RUN:
                j += 1
            out.append(j - i - 1)
        else:
            while j < n and raw[j] != background and j - i < MAX_RUN:
                j += 1
            out.append(0x7F + (j - i))
            out += raw[i:j]
        i = j
    if len(out) >= len(raw) + 1:
        return bytes([ENC_RAW]) + raw
    return bytes(out)


def decode_input(data: bytes, size: int) -> np.ndarray:
    """Inverse of `encode_input` (the device's decoder, in Python, for tests)."""
    if not data:
        raise ValueError("empty encoded input")
    if data[0] == ENC_RAW:
        if len(data) - 1 != size:
            raise ValueError("raw input has the wrong size")
        return np.frombuffer(data[1:], np.int8).copy()
    if data[0] != ENC_RUNS or len(data) < 2:
        raise ValueError("unknown input encoding")
    background = data[1]
    out = bytearray()
    i = 2
    while i < len(data):
        t = data[i]
        i += 1
        if t < 0x80:
            out += bytes([background]) * (t + 1)
        else:
            count = t - 0x7F
            if i + count > len(data):
                raise ValueError("literal run past the end")
            out += data[i : i + count]
            i += count
        if len(out) > size:
            raise ValueError("input longer than expected")
    if len(out) != size:
        raise ValueError("input shorter than expected")
    return np.frombuffer(bytes(out), np.int8).copy()


def input_crc(values: np.ndarray) -> int:
    """CRC-32 of the int8 input bytes: the device echoes it to prove what it computed on."""
    return crc32(np.ascontiguousarray(values, dtype=np.int8).reshape(-1).tobytes())


# --- message payloads ---------------------------------------------------------------


class ProtocolError(Exception):
    """A well-formed frame whose content is not what the protocol allows."""


def response_status(payload: bytes) -> tuple[int, str]:
    if not payload:
        raise ProtocolError("empty response payload")
    status = payload[0]
    if status == STATUS_OK:
        return status, ""
    text = payload[1:].decode("ascii", "replace").strip()
    return status, text or STATUS_TEXT.get(status, f"status {status}")


def require_ok(payload: bytes, what: str) -> None:
    """A response with a non-zero status is `what` failing, with the device's reason."""
    status, text = response_status(payload)
    if status != STATUS_OK:
        raise ProtocolError(f"{what} failed: {text}")


def unpack_head(payload: bytes, head, what: str) -> tuple:
    """The fixed head of an ok `what` response (status byte included), unpacked."""
    require_ok(payload, what)
    if len(payload) < head.size:
        raise ProtocolError(f"{what} reply too short")
    return head.unpack_from(payload)


def hash_prefix(model_hash_hex: str) -> bytes:
    """The 4 bytes every INFER/TRACE response carries to name the model that computed it."""
    return bytes.fromhex(model_hash_hex[:8])


@dataclass(frozen=True)
class DeviceInfo:
    """What INFO returns: every key the firmware sends, typed where the host needs it."""

    fields: dict[str, str]

    def __getitem__(self, key: str) -> str:
        return self.fields[key]

    def get(self, key: str, default=None):
        return self.fields.get(key, default)

    def int(self, key: str, default: int = 0) -> int:
        try:
            return int(self.fields.get(key, default))
        except ValueError:
            return default

    @property
    def model_hash(self) -> str:
        return self.fields.get("model_hash", "")

    def as_dict(self) -> dict:
        out: dict = {}
        for key, value in self.fields.items():
            out[key] = _typed(value)
        return out


def _typed(value: str):
    text = value.strip()
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text[-1:] in ("f", "F"):  # a C float literal stringified by the firmware
        try:
            return float(text[:-1])
        except ValueError:
            pass
    return text


def parse_info(payload: bytes) -> DeviceInfo:
    require_ok(payload, "INFO")
    return parse_info_text(payload[1:])


def parse_info_text(text: bytes) -> DeviceInfo:
    """INFO's `key=value` lines (from one INFO reply, or INFO_CHUNK replies put together)."""
    fields = {}
    for line in text.decode("ascii", "replace").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip()
    return DeviceInfo(fields)


INFO_CHUNK_REQ = struct.Struct("<BHH")  # tag, offset, max chunk
INFO_CHUNK_HEAD = struct.Struct("<BBHIH")  # status, tag, text size, text CRC-32, offset


def info_chunk_request(tag: int, offset: int, max_chunk: int) -> bytes:
    return INFO_CHUNK_REQ.pack(tag, offset, max_chunk)


@dataclass(frozen=True)
class InfoChunk:
    tag: int
    size: int  # of the whole text
    text_crc: int  # CRC-32 of the whole text: chunks of different texts never mix
    offset: int
    chunk: bytes


def parse_info_chunk(payload: bytes) -> InfoChunk:
    _, tag, size, text_crc, offset = unpack_head(payload, INFO_CHUNK_HEAD, "INFO_CHUNK")
    chunk = payload[INFO_CHUNK_HEAD.size :]
    if offset + len(chunk) > size:
        raise ProtocolError("INFO_CHUNK chunk past the end of the text")
    return InfoChunk(tag, size, text_crc, offset, chunk)


INFER_HEAD = struct.Struct("<B4sII")  # status, hash4, input crc, count


@dataclass(frozen=True)
class InferReply:
    hash4: bytes
    input_crc: int
    count: int  # counter steps (cycles, or guest instructions on QEMU)
    output: np.ndarray


def parse_infer(payload: bytes, output_size: int) -> InferReply:
    require_ok(payload, "INFER")
    if len(payload) != INFER_HEAD.size + output_size:
        raise ProtocolError(f"INFER reply of {len(payload)} bytes, expected {INFER_HEAD.size + output_size}")
    _, hash4, crc, count = INFER_HEAD.unpack_from(payload)
    output = np.frombuffer(payload[INFER_HEAD.size :], np.int8).copy()
    return InferReply(hash4, crc, count, output)


TRACE_REQ_HEAD = struct.Struct("<BHH")  # layer, offset, max chunk
TRACE_HEAD = struct.Struct("<B4sIBBiII")  # status, hash4, input crc, layers, layer, tensor, size, offset


def trace_request(layer: int, offset: int, max_chunk: int, encoded_input: bytes) -> bytes:
    return TRACE_REQ_HEAD.pack(layer, offset, max_chunk) + encoded_input


@dataclass(frozen=True)
class TraceReply:
    hash4: bytes
    input_crc: int
    num_layers: int
    layer: int
    tensor_index: int
    size: int
    offset: int
    counts: tuple[int, ...]  # per-layer counter steps, all layers
    chunk: bytes = field(repr=False)


def parse_trace(payload: bytes) -> TraceReply:
    _, hash4, crc, layers, layer, tensor, size, offset = unpack_head(payload, TRACE_HEAD, "TRACE")
    counts_end = TRACE_HEAD.size + 4 * layers
    if len(payload) < counts_end:
        raise ProtocolError("TRACE reply too short for its layer counts")
    counts = struct.unpack_from(f"<{layers}I", payload, TRACE_HEAD.size)
    chunk = payload[counts_end:]
    if offset + len(chunk) > size:
        raise ProtocolError("TRACE chunk past the end of its tensor")
    return TraceReply(hash4, crc, layers, layer, tensor, size, offset, counts, chunk)
