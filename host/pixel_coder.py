"""The "pixels" input encoding: a binary arithmetic coder with a small static context model.

Why: run-length coding leaves a digit at ~205 bytes, ~53 digits/s on a 115200-baud UART.
Coding each pixel against its already-sent neighbours with probabilities measured once on
the MNIST training set brings it to ~130 bytes (docs/PROTOCOL.md, "Input encoding").

The model (the same rule on both sides: this module and `decode_pixels` in
firmware_templates/agent/lenet_agent.c, whose table block it reads):

- Every input byte becomes d = (byte - zero_point) mod 256, so the background (real 0.0,
  i.e. the input zero point) is d = 0 whatever the model's quantization.
- The input is read as rows of `width` = sqrt(input_size) bytes when that is a whole
  number (28 for MNIST), else as one row. Neighbours outside the image count as d = 0.
- Context c = q(W) + 4 q(N) + 16 q(NW) + 64 q(NE) of the left, upper, upper-left and
  upper-right neighbours, q(d) = 0 (d = 0), 1 (< 64), 2 (< 192), 3 (>= 192).
- One binary decision "d != 0" with probability ZERO[c]; then, if d != 0, its 8 bits
  from the top, each a decision at node n (1..255, the bits so far with a leading 1) of a
  binary tree: nodes below 2**TOP_DEPTH use (c, n), deeper ones the coarse context
  (W >= 128) + 2 (N >= 128).
- Probabilities are 8-bit (probability of a 0 bit, x/256, 1..255), static: no adaptation,
  so the decoder keeps no model state, only the coder's two 32-bit registers.

Any bytes are coded losslessly (other data only less compactly); the host sends whichever
of raw, runs and pixels is shortest, and pixels only to a device whose INFO lists it.

The coder is LZMA's binary range coder with 8-bit probabilities (32-bit range, renormalise
below 2**24). The encoder here is vectorised over many inputs at once (numpy lanes); the
carries LZMA handles with its cache byte are propagated once at the end instead.
"""

from __future__ import annotations

import math
import queue
import re
import threading
from functools import lru_cache
from typing import Iterable, Iterator

import numpy as np

from lenet_edge.host import protocol as P

ENC_PIXELS = P.ENC_PIXELS
ENCODING_NAMES = {P.ENC_RAW: "raw", P.ENC_RUNS: "runs", ENC_PIXELS: "pixels"}

TOP_DEPTH = 2  # tree levels coded with the full neighbour context
N_CTX = 256
N_TOP = (1 << TOP_DEPTH) - 1  # nodes 1 .. 2**TOP_DEPTH - 1
N_LOW = 256 - (1 << TOP_DEPTH)  # nodes 2**TOP_DEPTH .. 255
N_CTX2 = 4
# Offsets of the three tables in one flat probability array (the decision's "slot").
ZERO_AT = 0
TOP_AT = ZERO_AT + N_CTX
LOW_AT = TOP_AT + N_CTX * N_TOP
TABLE_SIZE = LOW_AT + N_CTX2 * N_LOW

TOP_RANGE = 1 << 24
DIGIT_LANES = 2048  # inputs coded together: wide enough to amortise numpy's per-call cost


def width_for(size: int) -> int:
    """Row length of the context model: sqrt(size) for a square input, else one row."""
    w = math.isqrt(size)
    return w if w * w == size and w > 0 else max(size, 1)


def level(d: np.ndarray) -> np.ndarray:
    return (d > 0).astype(np.int32) + (d >= 64) + (d >= 192)


def contexts(d: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The model's contexts of every byte of inputs d (N, size) uint8: (c, c2), each
    (N, size), from the already-coded neighbours (outside the image: d = 0)."""
    n, size = d.shape
    rows = size // width
    pad = np.zeros((n, rows + 1, width + 2), np.int16)
    pad[:, 1:, 1:-1] = d.reshape(n, rows, width)
    west = pad[:, 1:, :-2]
    north = pad[:, :-1, 1:-1]
    nw = pad[:, :-1, :-2]
    ne = pad[:, :-1, 2:]
    ctx = level(west) + 4 * level(north) + 16 * level(nw) + 64 * level(ne)
    ctx2 = (west >= 128).astype(np.int16) + 2 * (north >= 128)
    return ctx.reshape(n, size), ctx2.reshape(n, size)


def zero_slots(ctx: np.ndarray) -> np.ndarray:
    """Table slot of the decision "d != 0"."""
    return ZERO_AT + ctx


def value_slots(v: np.ndarray, ctx: np.ndarray, ctx2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Table slots and bits (M, 8) of the value decisions of M nonzero bytes v (1-D, with
    their contexts): v's bits from the top, at tree node n = 1 followed by the bits so far."""
    v = v.astype(np.int32)[:, None]
    k = np.arange(8, dtype=np.int32)[None, :]
    node = (1 << k) | (v >> (8 - k))
    bits = ((v >> (7 - k)) & 1).astype(np.uint8)
    top = TOP_AT + ctx.astype(np.int32)[:, None] * N_TOP + node - 1
    low = LOW_AT + ctx2.astype(np.int32)[:, None] * N_LOW + node - (1 << TOP_DEPTH)
    return np.where(k < TOP_DEPTH, top, low), bits


def train_tables(images: np.ndarray) -> np.ndarray:
    """The static probabilities (uint8, P(bit = 0) x 256 in 1..255) from uint8 images
    (N, H, W) with background 0, e.g. MNIST's training set. Deterministic: integer counts,
    one rounding rule."""
    images = np.asarray(images, np.uint8).reshape(len(images), -1)
    ones = np.zeros(TABLE_SIZE, np.int64)
    total = np.zeros(TABLE_SIZE, np.int64)
    width = width_for(images.shape[1])
    for start in range(0, len(images), 5000):
        d = images[start:start + 5000]
        ctx, ctx2 = contexts(d, width)
        nz = d != 0
        value_slot, value_bit = value_slots(d[nz], ctx[nz], ctx2[nz])
        slots = np.concatenate([zero_slots(ctx).ravel(), value_slot.ravel()])
        bits = np.concatenate([nz.ravel(), value_bit.ravel()])
        total += np.bincount(slots, minlength=TABLE_SIZE)
        ones += np.bincount(slots[bits.astype(bool)], minlength=TABLE_SIZE)
    zeros = total - ones
    # P(0) with half a count added to each side (never 0 or 1), rounded half up.
    p0 = (256 * (2 * zeros + 1) + (2 * total + 2) // 2) // (2 * total + 2)
    return np.clip(p0, 1, 255).astype(np.uint8)


# --- the committed tables (a block of lenet_agent.c) ---------------------------------

TABLE_BEGIN = "/* BEGIN pixel tables: generated by scripts/make_pixel_tables.py, do not edit */"
TABLE_END = "/* END pixel tables */"


def agent_source_path():
    from lenet_edge.firmware_templates.render import AGENT_DIR

    return AGENT_DIR / "lenet_agent.c"


def table_block(tables: np.ndarray) -> str:
    """The C text of the tables, as lenet_agent.c holds it between the markers."""
    parts = [("pixel_zero", tables[ZERO_AT:TOP_AT], "[c]: P(d == 0)"),
             ("pixel_top", tables[TOP_AT:LOW_AT], f"[c * {N_TOP} + node - 1]: nodes < {1 << TOP_DEPTH}"),
             ("pixel_low", tables[LOW_AT:], f"[c2 * {N_LOW} + node - {1 << TOP_DEPTH}]: deeper nodes")]
    lines = [TABLE_BEGIN, f"#define PIXEL_TOP_DEPTH {TOP_DEPTH}u"]
    for name, values, what in parts:
        lines.append(f"/* {what} */")
        lines.append(f"static const uint8_t {name}[{len(values)}] = {{")
        for i in range(0, len(values), 16):
            lines.append("    " + ", ".join(str(int(v)) for v in values[i:i + 16]) + ",")
        lines.append("};")
    lines.append(TABLE_END)
    return "\n".join(lines)


@lru_cache(maxsize=1)
def tables() -> np.ndarray:
    """The probabilities the device decodes with, read from lenet_agent.c."""
    text = agent_source_path().read_text()
    start, end = text.find(TABLE_BEGIN), text.find(TABLE_END)
    if start < 0 or end < 0:
        raise RuntimeError("lenet_agent.c has no pixel table block")
    body = text[start:end].split("\n", 2)[2]  # past the marker and the #define
    values = [int(v) for v in re.findall(r"\b\d+\b", re.sub(r"/\*.*?\*/|\[\d+\]", "", body))]
    if len(values) != TABLE_SIZE:
        raise RuntimeError(f"lenet_agent.c's pixel tables hold {len(values)} values, not {TABLE_SIZE}")
    return np.array(values, np.uint8)


# --- the range coder, vectorised over inputs ----------------------------------------


def _range_code(p0: np.ndarray, bits: np.ndarray, lengths: np.ndarray) -> list[bytes]:
    """Code lane i's first lengths[i] decisions (p0, bits: (steps, lanes), lanes sorted by
    length, longest first). Returns each lane's bytes."""
    steps, lanes = p0.shape
    low = np.zeros(lanes, np.int64)
    rng = np.full(lanes, 0xFFFFFFFF, np.int64)
    # A decision narrows the range by at most 2**8 (p0 >= 1/256, plus rounding): about one
    # byte per decision at most, + 4 for the flush.
    out = np.zeros((lanes, steps + steps // 8 + 8), np.int16)
    pos = np.zeros(lanes, np.int64)
    active = np.searchsorted(-lengths, -np.arange(steps), side="left")  # lanes with length > t

    def shift(small: np.ndarray) -> None:
        out[small, pos[small]] = low[small] >> 24  # may carry into the byte before
        pos[small] += 1
        low[small] = (low[small] & 0xFFFFFF) << 8
        rng[small] <<= 8

    for t in range(steps):
        k = int(active[t])
        r = rng[:k]
        bound = (r >> 8) * p0[t, :k]
        one = bits[t, :k].astype(bool)
        low[:k] += np.where(one, bound, 0)
        rng[:k] = np.where(one, r - bound, bound)
        small = np.flatnonzero(rng[:k] < TOP_RANGE)
        if small.size:
            shift(small)
            again = small[rng[small] < TOP_RANGE]  # p0 >= 1/256: at most two bytes
            if again.size:
                shift(again)
    # Flush: the value in [low, low + rng) with the most trailing zero bits, 4 bytes of it
    # (the decoder reads missing bytes as 0, so trailing zeros are then dropped).
    value = low.copy()
    found = np.zeros(lanes, bool)
    for b in range(34, -1, -1):
        cand = ((low + (np.int64(1) << b) - 1) >> b) << b
        ok = ~found & (cand <= low + rng - 1)
        value[ok] = cand[ok]
        found |= ok
    idx = np.arange(lanes)
    for j, sh in enumerate((24, 16, 8, 0)):
        out[idx, pos + j] = (value >> sh) if sh == 24 else (value >> sh) & 0xFF
    pos += 4
    # Carries, right to left: every stored digit is < 512 (+ carries from the right).
    for j in range(out.shape[1] - 1, 0, -1):
        carry = out[:, j] >> 8
        if carry.any():
            out[:, j] &= 0xFF
            out[:, j - 1] += carry
    if (out[:, 0] > 0xFF).any():
        raise AssertionError("range coder overflow")
    result = []
    data = out.astype(np.uint8)
    for i in range(lanes):
        row = data[i, : pos[i]]
        nz = np.flatnonzero(row)
        result.append(row[: nz[-1] + 1].tobytes() if nz.size else b"")
    return result


def encode_pixels(values: np.ndarray, zero_point: int) -> list[bytes]:
    """The pixels encoding (type byte included) of every int8 input in `values` (N, size)."""
    values = np.ascontiguousarray(values, dtype=np.int8)
    n, size = values.shape
    if size == 0:
        return [bytes([ENC_PIXELS])] * n
    d = (values.view(np.uint8).astype(np.int32) - (zero_point & 0xFF)) & 0xFF
    d = d.astype(np.uint8)
    width = width_for(size)
    table = tables().astype(np.int32)
    encoded: list[bytes] = [b""] * n
    for start in range(0, n, DIGIT_LANES):
        chunk = d[start:start + DIGIT_LANES]
        nz = chunk != 0
        lengths = size + 8 * nz.sum(axis=1)
        order = np.argsort(-lengths, kind="stable")  # longest first: active lanes are a prefix
        chunk, nz, lengths = chunk[order], nz[order], lengths[order]
        lanes = len(order)
        ctx, ctx2 = contexts(chunk, width)
        # Decision number of each pixel's "d != 0": its index plus 8 per nonzero before it.
        at = np.arange(size, dtype=np.int32)[None, :] + 8 * (np.cumsum(nz, axis=1, dtype=np.int32) - nz)
        steps = int(lengths[0])
        p0 = np.full((steps, lanes), 128, np.int32)
        b = np.zeros((steps, lanes), np.uint8)
        lane = np.broadcast_to(np.arange(lanes)[:, None], (lanes, size))
        p0[at, lane] = table[zero_slots(ctx)]
        b[at, lane] = nz
        rows, cols = np.nonzero(nz)
        first = at[rows, cols] + 1
        slots, bits = value_slots(chunk[rows, cols], ctx[rows, cols], ctx2[rows, cols])
        for k in range(8):
            p0[first + k, rows] = table[slots[:, k]]
            b[first + k, rows] = bits[:, k]
        for i, code in zip(order, _range_code(p0, b, lengths)):
            encoded[start + int(i)] = bytes([ENC_PIXELS]) + code
    return encoded


# --- choosing an encoding -------------------------------------------------------------


def device_encodings(info) -> set[str]:
    """Encodings the device decodes: INFO's `encodings` (raw and runs before it existed)."""
    listed = info.get("encodings") if info is not None else None
    if not listed:
        return {"raw", "runs"}
    return {name.strip() for name in listed.split(",") if name.strip()}


class InputEncoder:
    """Encodes inputs for one device: the shortest of what it decodes."""

    def __init__(self, encodings: Iterable[str] = ("raw", "runs"), zero_point: int = 0):
        self.pixels = "pixels" in set(encodings)
        self.zero_point = zero_point

    @classmethod
    def for_device(cls, info) -> "InputEncoder":
        return cls(device_encodings(info), info.int("input_zero_point") if info is not None else 0)

    def encode_many(self, values: np.ndarray) -> list[bytes]:
        values = np.ascontiguousarray(values, dtype=np.int8)
        classic = [P.encode_input(v) for v in values]
        if not self.pixels:
            return classic
        return [p if len(p) < len(c) else c for p, c in zip(encode_pixels(values, self.zero_point), classic)]

    def encode(self, values: np.ndarray) -> bytes:
        values = np.ascontiguousarray(values, dtype=np.int8).reshape(1, -1)
        return self.encode_many(values)[0]

    def stream(self, items: Iterable[tuple[object, np.ndarray]], chunk: int = 256
               ) -> Iterator[tuple[object, np.ndarray, bytes]]:
        """(key, values, encoded) for each (key, values), encoding up to `chunk` at a time
        (the coder is vectorised: one input alone costs about as much as 64) in a thread
        ahead of the consumer, so the link does not idle while a chunk is coded. The first
        chunks are small, so the first request goes out at once."""
        results: queue.Queue = queue.Queue(maxsize=1)  # at most ~3 chunks taken ahead
        stop = threading.Event()

        def produce() -> None:
            try:
                batch: list[tuple[object, np.ndarray]] = []
                size = min(8, chunk)
                for item in items:
                    batch.append(item)
                    if len(batch) == size:
                        if not _put(list(self._flush(batch))):
                            return
                        batch = []
                        size = min(4 * size, chunk)
                if batch and not _put(list(self._flush(batch))):
                    return
                _put(None)
            except BaseException as exc:  # handed to the consumer, raised there
                _put(exc)

        def _put(value) -> bool:
            while not stop.is_set():
                try:
                    results.put(value, timeout=0.1)
                    return True
                except queue.Full:
                    pass
            return False

        worker = threading.Thread(target=produce, daemon=True, name="input-encoder")
        worker.start()
        try:
            while True:
                got = results.get()
                if got is None:
                    return
                if isinstance(got, BaseException):
                    raise got
                yield from got
        finally:
            stop.set()

    def _flush(self, batch):
        sizes = {v.size for _, v in batch}
        if len(sizes) != 1:  # mixed sizes (the caller rejects the wrong one): one by one
            for key, values in batch:
                yield key, values, self.encode(values)
            return
        encoded = self.encode_many(np.stack([v.reshape(-1) for _, v in batch]))
        for (key, values), enc in zip(batch, encoded):
            yield key, values, enc
