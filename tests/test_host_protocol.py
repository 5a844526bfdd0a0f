"""The serial protocol: framing, resync, input coding (Python), and protocol.c compiled
for this machine with the real generated library, talking through a real TCP link."""

from __future__ import annotations

import random
import struct
import time

import numpy as np
import pytest

from lenet_edge.errors import LenetEdgeError
from lenet_edge.host import protocol as P
from lenet_edge.host.faultproxy import FaultProxy, FaultRates
from lenet_edge.host.session import DeviceSession
from lenet_edge.quantize.evaluate import pixels_to_int8
from lenet_edge.quantize.tflm import TflmModel
from tests.host_fixtures import (  # noqa: F401
    GoesDeaf,
    host_device_binary,
    lenet_model_files,
    mnist_test,
    modern_export,
    run_host_device,
    tcp_server,
)


def test_frame_round_trip_and_layout():
    frame = P.encode_frame(P.INFER, 0x1234, b"\x01\x02\x03")
    assert frame[:2] == P.SYNC and len(frame) == P.OVERHEAD + 3
    msg_type, seq, length = struct.unpack_from("<BHH", frame, 2)
    assert (msg_type, seq, length) == (P.INFER, 0x1234, 3)
    assert frame[7] == P.crc8(frame[2:7])
    assert P.Deframer().feed(frame) == [P.Frame(P.INFER, 0x1234, b"\x01\x02\x03")]


def test_deframer_finds_frames_in_garbage_byte_by_byte():
    rng = random.Random(1)
    frames = [P.encode_frame(0x82, i, bytes(rng.randrange(256) for _ in range(rng.randrange(40)))) for i in range(30)]
    stream = b"lenet-edge 0.1.0 board cpu\r\n"
    for f in frames:
        stream += bytes(rng.randrange(256) for _ in range(rng.randrange(5))) + b"\xa5" + f
    deframer = P.Deframer()
    got = []
    for i in range(len(stream)):
        got += deframer.feed(stream[i : i + 1])
    assert [f.seq for f in got] == list(range(30))
    assert b"lenet-edge" in deframer.take_garbage()


def test_a_frame_ending_in_a5_at_a_read_boundary_leaves_no_garbage():
    """A CRC whose last byte is A5 (the first sync byte) at the end of a read must not be
    kept as the possible start of the next frame (it was counted as garbage once the
    next frame arrived: 1 frame in 256, when a read ended right there)."""
    seq = next(s for s in range(1, 5000) if P.encode_frame(0x82, s, b"x" * 23)[-1] == 0xA5)
    first, second = P.encode_frame(0x82, seq, b"x" * 23), P.encode_frame(0x82, seq + 1, b"y")
    d = P.Deframer()
    assert [f.seq for f in d.feed(first)] == [seq]
    assert [f.seq for f in d.feed(second)] == [seq + 1]
    assert d.stats.garbage_bytes == 0 and d.take_garbage() == b""
    # A lone A5 at the end of a read is still kept for the sync that may follow.
    assert d.feed(b"noise" + second[:1]) == [] and [f.seq for f in d.feed(second[1:])] == [seq + 1]
    assert d.stats.garbage_bytes == 5


def test_every_single_bit_error_is_rejected_and_next_frame_survives():
    good = P.encode_frame(0x82, 7, bytes(range(50)))
    follower = P.encode_frame(0x82, 8, b"next")
    for bit in range(len(good) * 8):
        bad = bytearray(good)
        bad[bit // 8] ^= 1 << (bit % 8)
        frames = P.Deframer().feed(bytes(bad) + follower)
        assert [f.seq for f in frames] == [8], f"bit {bit}"


def test_corrupted_length_does_not_swallow_following_frames():
    first = bytearray(P.encode_frame(0x82, 1, b"x" * 10))
    first[5] ^= 0x40  # length byte: the header CRC catches it
    frames = P.Deframer().feed(bytes(first) + P.encode_frame(0x82, 2, b"y"))
    assert [f.seq for f in frames] == [2]


def test_a_false_header_holds_up_frames_only_until_the_host_gives_up_on_it():
    # A header whose CRC-8 happens to pass (1 in 256 damaged ones) and claims a long payload.
    head = struct.pack("<BHH", 0x82, 99, 1000)
    false_start = P.SYNC + head + bytes([P.crc8(head)])
    real = P.encode_frame(0x82, 1, b"answer") + P.encode_frame(0x82, 2, b"another")
    deframer = P.Deframer()
    assert deframer.feed(false_start + real) == []
    assert deframer.give_up_partial()
    assert [f.seq for f in deframer.feed(b"")] == [1, 2]
    assert not deframer.give_up_partial()
    # A partial frame with nothing intact behind it may be a slow device's real answer
    # (QEMU stalled mid-frame): it is kept, and completes when its bytes come.
    answer = P.encode_frame(0x82, 3, b"a slow answer")
    slow = P.Deframer()
    assert slow.feed(answer[:12]) == [] and not slow.give_up_partial()
    assert [f.seq for f in slow.feed(answer[12:])] == [3] and slow.stats.garbage_bytes == 0
    # Lengths beyond max_payload are rejected at once.
    head = struct.pack("<BHH", 0x82, 99, P.MIN_MAX_PAYLOAD + 1)
    assert [f.seq for f in P.Deframer().feed(P.SYNC + head + bytes([P.crc8(head)]) + real)] == [1, 2]


def test_input_coding_round_trip_and_compresses_mnist(mnist_test):
    images, _ = mnist_test
    digits = pixels_to_int8(images[:2000]).reshape(2000, -1)
    sizes = []
    for d in digits:
        enc = P.encode_input(d)
        assert np.array_equal(P.decode_input(enc, 784), d)
        sizes.append(len(enc))
    # ~190 bytes for a 784-byte digit: the link carries ~4x more digits.
    assert np.mean(sizes) < 230
    rng = np.random.default_rng(0)
    for x in [rng.integers(-128, 128, 784), np.full(784, 5), np.zeros(784), np.arange(784) % 3]:
        x = x.astype(np.int8)
        enc = P.encode_input(x)
        assert len(enc) <= 785
        assert np.array_equal(P.decode_input(enc, 784), x)


def test_host_build_answers_info_and_matches_tflm(host_device_binary, lenet_model_files, mnist_test):
    """protocol.c + generated C: INFER logits equal TFLM's; TRACE tensors equal TFLM's."""
    import hashlib

    model = lenet_model_files["modern"]
    images, _ = mnist_test
    n = 300
    inputs = pixels_to_int8(images[:n]).reshape(n, -1)
    rng = np.random.default_rng(3)
    inputs = np.concatenate([inputs, rng.integers(-128, 128, (50, 784)).astype(np.int8)])
    ref = TflmModel(model, preserve_all_tensors=True)
    with run_host_device(host_device_binary) as (url, _):
        with DeviceSession(url) as session:
            info = session.info()
            assert info.model_hash == hashlib.sha256(model.read_bytes()).hexdigest()
            assert info.int("input_size") == 784 and info.int("output_size") == 10
            assert session.echo(b"abc\xa5\x5a") == b"abc\xa5\x5a"
            results = dict(session.infer_stream(enumerate(inputs)))
            for i, x in enumerate(inputs):
                assert np.array_equal(results[i].output, ref.invoke(x).reshape(-1)), i
            traces = session.trace(inputs[0])
            ref.invoke(inputs[0])
            # The C may fuse ops (then it traces the fused op's output): a subsequence of
            # TFLM's op outputs, in execution order, ending with the model output.
            op_outputs = [t for op in ref.ops for t in op.outputs]
            traced = [t.tensor_index for t in traces]
            assert traced == [t for t in op_outputs if t in traced] and traced[-1] == op_outputs[-1]
            for t in traces:
                assert np.array_equal(t.data, ref.tensor(t.tensor_index).reshape(-1))


@pytest.mark.parametrize("rate", [3e-4, 1e-3])
def test_host_build_through_faulty_link_gives_clean_results(host_device_binary, mnist_test, rate):
    images, _ = mnist_test
    n = 300
    inputs = pixels_to_int8(images[:n]).reshape(n, -1)
    with run_host_device(host_device_binary) as (url, _):
        with DeviceSession(url) as clean:
            expected = dict(clean.infer_stream(enumerate(inputs)))
    with run_host_device(host_device_binary) as (url, _):
        port = int(url.rsplit(":", 1)[1])
        rates = FaultRates(drop=rate, flip=rate, insert=rate, delay=rate / 5, delay_s=0.05)
        with FaultProxy(port, rates, seed=int(rate * 1e6)) as proxy:
            with DeviceSession(proxy.url, timeout=0.5) as session:
                got = dict(session.infer_stream(enumerate(inputs)))
                stats = session.link_stats
            faults = proxy.counts
    assert faults.dropped and faults.flipped and faults.inserted
    assert stats["retransmissions"] > 0
    assert sorted(got) == list(range(n))
    for i in range(n):
        assert np.array_equal(got[i].output, expected[i].output)


class _DamageLongChunks(FaultProxy):
    """Flips byte `min_len - 1` of the first `count` chunks longer than `min_len` going one
    way (inside the chunk's first, long frame, whose CRC then fails; a short frame sent
    right behind it, such as the host's late probe, may share the chunk and pass);
    everything else passes untouched."""

    def __init__(self, port, *, upstream: bool, min_len: int, count: int):
        super().__init__(port, FaultRates())
        self.direction, self.min_len, self.left = upstream, min_len, count

    def _mangle(self, data, upstream):
        if upstream == self.direction and len(data) > self.min_len and self.left > 0:
            self.left -= 1
            k = self.min_len - 1
            data = data[:k] + bytes([data[k] ^ 0x01]) + data[k + 1:]
        yield data, 0.0


class _StallsOnce(FaultProxy):
    """Holds the device's answers back for `seconds` once, after `after` bytes (what QEMU
    on a loaded host does); loses nothing."""

    def __init__(self, port, *, after: int, seconds: float):
        super().__init__(port, FaultRates())
        self.after, self.seconds = after, seconds

    def _mangle(self, data, upstream):
        if not upstream and self.after is not None:
            self.counts.bytes_down += len(data)
            if self.counts.bytes_down >= self.after:
                self.after = None
                yield b"", self.seconds
        yield data, 0.0


def test_a_slow_device_is_not_taken_for_a_lossy_link(host_device_binary, mnist_test):
    """Answers held back for 1.5 s mid-run, several retransmission timeouts long: the
    timeouts only probe, nothing is resent, every result arrives once."""
    images, _ = mnist_test
    inputs = pixels_to_int8(images[:60]).reshape(60, -1)
    with run_host_device(host_device_binary) as (url, _):
        with DeviceSession(url) as clean:
            expected = dict(clean.infer_stream(enumerate(inputs)))
    with run_host_device(host_device_binary) as (url, _):
        with _StallsOnce(int(url.rsplit(":", 1)[1]), after=1500, seconds=1.5) as proxy:
            with DeviceSession(proxy.url) as session:
                got = dict(session.infer_stream(enumerate(inputs)))
                stats = session.link_stats
    assert stats["timeouts"] >= 1 and session.rtt.rto < 1.5  # the stall outlasted the timeout
    assert stats["retransmissions"] == 0 and stats["stale_answers"] == 0
    assert stats["garbage_bytes"] == 0 and stats["header_errors"] == 0
    assert sorted(got) == list(range(60))
    for i in range(60):
        assert np.array_equal(got[i].output, expected[i].output)


@pytest.mark.parametrize("upstream", [True, False], ids=["requests-damaged", "answers-damaged"])
def test_a_device_that_is_there_is_not_given_up_after_the_silence_limit(host_device_binary, mnist_test, upstream):
    """Long frames damaged more times in a row than `retries`: the device still answers
    the short probes (or sends frames whose payload CRC fails), so the host keeps trying."""
    images, _ = mnist_test
    digit = pixels_to_int8(images[:1]).reshape(-1)
    retries = 3
    with run_host_device(host_device_binary) as (url, _):
        with DeviceSession(url) as clean:
            expected = clean.infer(digit).output
    with run_host_device(host_device_binary) as (url, _):
        port = int(url.rsplit(":", 1)[1])
        # Upstream: the INFER request (~200 bytes); downstream: INFO's chunks (~150 bytes).
        with _DamageLongChunks(port, upstream=upstream, min_len=100, count=retries + 3) as proxy:
            with DeviceSession(proxy.url, timeout=0.2, retries=retries) as session:
                got = session.infer(digit).output
                stats = session.link_stats
    # More damaged attempts than `retries` allows for a silent device, and still an answer.
    # (A long answer the link splits into two damaged chunks costs one retransmission.)
    assert proxy.left == 0 and stats["retransmissions"] > retries
    assert np.array_equal(got, expected)


def test_a_device_that_stops_answering_mid_run_fails_in_bounded_time(host_device_binary, mnist_test):
    images, _ = mnist_test
    inputs = pixels_to_int8(images[:200]).reshape(200, -1)
    with run_host_device(host_device_binary) as (url, _):
        with GoesDeaf(int(url.rsplit(":", 1)[1]), up_bytes=5000) as proxy:
            with DeviceSession(proxy.url, timeout=0.2, retries=3) as session:
                started = time.monotonic()
                answered = []
                with pytest.raises(LenetEdgeError, match="stopped answering INFER"):
                    for key, _ in session.infer_stream(enumerate(inputs)):
                        answered.append(key)
                elapsed = time.monotonic() - started
    assert 0 < len(answered) < len(inputs)
    assert elapsed < 0.2 * (3 + 1) + 3


@pytest.mark.parametrize("size", [1, 127, 128, 129, 768, 3072])
def test_input_coding_is_lossless_for_any_data(size):
    """Non-MNIST inputs (RGB noise, bright backgrounds, smooth gradients, any size): the
    coding stays lossless and never grows past raw bytes + 1."""
    rng = np.random.default_rng(size)
    gradient = (np.arange(size) * 255 // max(size - 1, 1) - 128)
    for x in [rng.integers(-128, 128, size), np.full(size, 127), gradient,
              np.where(rng.random(size) < 0.6, 90, rng.integers(-128, 128, size))]:
        x = x.astype(np.int8)
        enc = P.encode_input(x)
        assert len(enc) <= size + 1
        assert np.array_equal(P.decode_input(enc, size), x)


def test_retransmission_timeout_adapts_to_measured_round_trips():
    from lenet_edge.host.session import MIN_RTO_S, RttEstimator

    rtt = RttEstimator(ceiling=2.0)
    assert rtt.rto == 2.0  # nothing measured yet: the configured timeout
    for _ in range(20):
        rtt.sample(0.010)
    assert rtt.rto == MIN_RTO_S  # a fast, steady link: the floor
    for sample in (0.2, 0.6, 0.3, 0.5):
        rtt.sample(sample)
    assert 0.3 < rtt.rto <= 2.0  # slower and jittery: srtt + 4 rttvar
    before = rtt.rto
    rtt.back_off()
    assert rtt.rto == min(2 * before, 2.0)
    for _ in range(5):
        rtt.back_off()
    assert rtt.rto == 2.0  # never beyond the configured timeout


def _ask(sock, deframer: P.Deframer, msg_type: int, seq: int, payload: bytes = b"") -> P.Frame:
    """One request to the host build over a raw socket (a clean link): its answer."""
    sock.sendall(P.encode_frame(msg_type, seq, payload))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for frame in deframer.feed(sock.recv(4096)):
            if frame.seq == seq:
                return frame
    raise AssertionError("no answer")


def test_info_chunks_come_from_one_snapshot_per_tag(host_device_binary):
    """INFO_CHUNK: the text INFO sends whole, in chunks that each carry its size and CRC;
    every chunk of one tag comes from the same text (the frame counters and uptime held
    at its first request), a new tag reads the values afresh."""
    import socket

    with run_host_device(host_device_binary) as (url, _):
        host, port = url.removeprefix("socket://").split(":")
        with socket.create_connection((host, int(port))) as sock:
            d = P.Deframer()
            whole = P.parse_info(_ask(sock, d, P.INFO, 1).payload)

            def chunk(seq, tag, offset, max_chunk):
                frame = _ask(sock, d, P.INFO_CHUNK, seq, P.info_chunk_request(tag, offset, max_chunk))
                assert frame.type == P.INFO_CHUNK | P.RESPONSE
                return P.parse_info_chunk(frame.payload)

            first = chunk(2, 7, 0, 100)
            assert (first.tag, first.offset, len(first.chunk)) == (7, 0, 100)
            time.sleep(0.02)  # uptime moves on, and more frames arrive: the text does not
            assert _ask(sock, d, P.ECHO, 3, b"x").payload == b"\x00x"
            parts, seq = [first], 4
            while sum(len(c.chunk) for c in parts) < first.size:
                parts.append(chunk(seq, 7, sum(len(c.chunk) for c in parts), 100))
                seq += 1
            assert {(c.size, c.text_crc) for c in parts} == {(first.size, first.text_crc)}
            text = b"".join(c.chunk for c in parts)
            assert len(parts) > 4 and P.crc32(text) == first.text_crc
            held = P.parse_info_text(text)
            assert set(held.fields) == set(whole.fields)
            changing = {"frames_ok", "uptime_ms", "stack_used", "rx_dropped", "frames_bad", "garbage_bytes"}
            assert {k: v for k, v in held.fields.items() if k not in changing} == \
                {k: v for k, v in whole.fields.items() if k not in changing}
            assert held.int("frames_ok") == whole.int("frames_ok") + 1  # held at chunk 0
            # A new tag: values read again (more frames since), so another text.
            fresh = chunk(seq, 8, 0, 100)
            assert fresh.text_crc != first.text_crc
            # Past the end, and a zero-length chunk: empty chunks; a short request: refused.
            assert chunk(seq + 1, 8, first.size + 50, 100).chunk == b""
            assert chunk(seq + 2, 8, 10, 0).chunk == b""
            short = _ask(sock, d, P.INFO_CHUNK, seq + 3, b"\x08\x00")
            assert P.response_status(short.payload)[0] == 1  # bad request length


def test_session_reads_info_in_chunks_and_an_older_agent_whole(host_device_binary):
    """The session reads INFO in chunks of at most REPLY_CHUNK_BYTES; an agent that answers
    INFO_CHUNK as an unknown type gets one whole INFO instead."""
    from lenet_edge.host.session import REPLY_CHUNK_BYTES

    with run_host_device(host_device_binary) as (url, _):
        with DeviceSession(url) as session:
            info = session.info()
            assert info.int("input_size") == 784 and info.get("board") == "host"
            stats = session.link_stats
    # One frame per chunk (one request at a time before INFO gives the window), no resend.
    size = len("".join(f"{k}={v}\n" for k, v in info.fields.items()))
    assert stats["sent_frames"] == -(-size // REPLY_CHUNK_BYTES) and stats["retransmissions"] == 0

    text = b"protocol=1\nmodel_hash=" + b"ab" * 32 + b"\ninput_size=784\noutput_size=10\n"
    asked = []

    def old_agent(conn, stop):
        d = P.Deframer()
        while not stop.is_set():
            data = conn.recv(4096)
            if not data:
                return
            for f in d.feed(data):
                asked.append(f.type)
                if f.type == P.INFO:
                    conn.sendall(P.encode_frame(P.INFO | P.RESPONSE, f.seq, b"\x00" + text))
                else:
                    conn.sendall(P.encode_frame(P.ERROR, f.seq, b"\x05"))

    with tcp_server(old_agent) as url:
        with DeviceSession(url) as session:
            assert session.info().int("output_size") == 10
    assert asked == [P.INFO_CHUNK, P.INFO]
