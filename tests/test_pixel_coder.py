"""The "pixels" input encoding (host/pixel_coder.py -> the agent's decoder in C): lossless
on all 70,000 MNIST images and on random and extreme inputs of any size and zero point,
tables that regenerate byte-identically, negotiation through INFO, and the real session
against the host build of the firmware."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lenet_edge.host import pixel_coder as C
from lenet_edge.host import protocol as P
from tests.host_fixtures import (  # noqa: F401
    AGENT, host_device_binary, lenet_model_files, mnist_test, modern_export, run_host_device)

HARNESS = Path(__file__).parent / "pixel_decode_main.c"


def _decoder(out: Path, sanitize: bool):
    """The agent's decoder on the host: records in, decoded inputs out."""
    exe = out / "decode"
    flags = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"] if sanitize else []
    subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", *flags,
                    f"-I{AGENT}", str(HARNESS), str(AGENT / "lenet_agent.c"), "-o", str(exe)], check=True)

    def decode(encoded: list[bytes], size: int, zero_point: int) -> tuple[np.ndarray, np.ndarray]:
        """(status per record: 0 ok, decoded (N, size) int8)."""
        stream = b"".join(struct.pack("<bHH", zero_point, size, len(e)) + e for e in encoded)
        out = subprocess.run([str(exe)], input=stream, capture_output=True, check=True).stdout
        rec = np.frombuffer(out, np.uint8).reshape(len(encoded), size + 1)
        return rec[:, 0], rec[:, 1:].view(np.int8)

    return decode


@pytest.fixture(scope="module")
def decoder(tmp_path_factory):
    """Under ASan + UBSan (random, extreme and malformed inputs)."""
    return _decoder(tmp_path_factory.mktemp("pixdec-asan"), sanitize=True)


@pytest.fixture(scope="module")
def fast_decoder(tmp_path_factory):
    """Plain -O2, for the 70,000 digits (the same code runs sanitized on the rest)."""
    return _decoder(tmp_path_factory.mktemp("pixdec"), sanitize=False)


def _mnist_int8(images: np.ndarray) -> np.ndarray:
    """The bundled models' input quantization: pixel p -> p - 128 (scale 1/255, zp -128)."""
    return (images.reshape(len(images), -1).astype(np.int16) - 128).astype(np.int8)


def test_all_70000_mnist_images_round_trip_exactly(fast_decoder, mnist_test):
    from lenet_edge.train.mnist import load_mnist

    train, _ = load_mnist("train")
    test = _mnist_int8(mnist_test[0])
    for images in (_mnist_int8(train), test):
        encoded = C.encode_pixels(images, -128)
        status, decoded = fast_decoder(encoded, 784, -128)
        assert not status.any()
        np.testing.assert_array_equal(decoded, images)
    # Compact: ~126 bytes a test digit (type byte included) where runs need ~205.
    sizes = np.array([len(e) for e in encoded])
    runs = np.array([len(P.encode_input(v)) for v in test[:500]])
    assert sizes.mean() < 128 and runs.mean() > 1.5 * sizes[:500].mean()


@pytest.mark.parametrize("size", [1, 2, 3, 16, 100, 784, 785, 1024, 3072])
@pytest.mark.parametrize("zero_point", [-128, 0, 37, 127])
def test_random_and_extreme_inputs_round_trip_exactly(decoder, size, zero_point):
    rng = np.random.default_rng(size * 1000 + zero_point + 128)
    extremes = [np.full(size, v, np.int8) for v in (-128, -127, 0, 127, zero_point)]
    alternating = np.where(np.arange(size) % 2, 127, -128).astype(np.int8)
    lone = np.full(size, zero_point, np.int8)
    lone[size // 2] = zero_point ^ 0x55 if zero_point >= 0 else 5
    sparse = np.where(rng.random(size) < 0.1, rng.integers(-128, 128, size), zero_point).astype(np.int8)
    inputs = np.stack(extremes + [alternating, lone, sparse]
                      + [rng.integers(-128, 128, size).astype(np.int8) for _ in range(20)])
    encoded = C.encode_pixels(inputs, zero_point)
    status, decoded = decoder(encoded, size, zero_point)
    assert not status.any()
    np.testing.assert_array_equal(decoded, inputs)
    # What the host sends is the shortest form, so never longer than raw.
    chosen = C.InputEncoder(["raw", "runs", "pixels"], zero_point).encode_many(inputs)
    assert all(len(e) <= size + 1 for e in chosen)
    status, decoded = decoder(chosen, size, zero_point)
    assert not status.any()
    np.testing.assert_array_equal(decoded, inputs)


def test_decoder_rejects_trailing_bytes_and_survives_garbage(decoder, mnist_test):
    digit = _mnist_int8(mnist_test[0][:1])
    (good,) = C.encode_pixels(digit, -128)
    rng = np.random.default_rng(7)
    garbage = [bytes([C.ENC_PIXELS]) + rng.integers(0, 256, n, dtype=np.uint8).tobytes()
               for n in (0, 1, 3, 50, 200, 2000)]
    # The coder's output is at most as long as what the decoder reads (trailing zeros are
    # dropped): 5 bytes more are more than it needs, a sign of a malformed request.
    status, decoded = decoder([good, good + b"\x00" * 5, good + b"\x01" * 5, *garbage], 784, -128)
    assert status[0] == 0 and np.array_equal(decoded[0], digit[0])
    assert status[1] == 1 and status[2] == 1
    assert status[-1] == 1  # 2000 random bytes cannot all be needed for 784 pixels


def test_one_input_codes_as_in_a_batch(mnist_test):
    """Lanes are independent: the session's chunked encoding is the same as one at a time."""
    images = _mnist_int8(mnist_test[0][:40])
    batch = C.encode_pixels(images, -128)
    assert [C.encode_pixels(images[i:i + 1], -128)[0] for i in (0, 17, 39)] == [batch[0], batch[17], batch[39]]
    encoder = C.InputEncoder(["raw", "runs", "pixels"], -128)
    streamed = list(encoder.stream(((i, images[i]) for i in range(40)), chunk=16))
    assert [k for k, _, _ in streamed] == list(range(40))
    assert [e for _, _, e in streamed] == encoder.encode_many(images)
    assert sum(e == p for (_, _, e), p in zip(streamed, batch)) >= 39  # pixels nearly always win


def test_tables_regenerate_byte_identically_from_the_training_set():
    from lenet_edge.train.mnist import load_mnist

    train, _ = load_mnist("train")
    block = C.table_block(C.train_tables(train))
    assert block in C.agent_source_path().read_text()
    assert C.tables().size == C.TABLE_SIZE == 2032


def test_encoding_is_negotiated_through_info():
    old = P.DeviceInfo({"model_hash": "00", "input_size": "784"})  # before `encodings`
    new = P.DeviceInfo({"encodings": "raw,runs,pixels", "input_zero_point": "-128"})
    assert C.device_encodings(old) == {"raw", "runs"}
    assert not C.InputEncoder.for_device(old).pixels
    encoder = C.InputEncoder.for_device(new)
    assert encoder.pixels and encoder.zero_point == -128
    digit = np.full(784, -128, np.int8)
    digit[300:310] = 100
    assert C.InputEncoder.for_device(old).encode(digit)[0] == P.ENC_RUNS
    assert encoder.encode(digit)[0] == C.ENC_PIXELS


def test_session_sends_pixels_to_the_host_built_device(host_device_binary, lenet_model_files, mnist_test):
    """The real session and agent: INFO lists pixels, digits go pixel-coded (~140 bytes a
    frame instead of ~217), results are TFLM's; forcing the old runs encoding still works."""
    from lenet_edge.host.session import DeviceSession
    from lenet_edge.quantize.tflm import TflmModel

    inputs = _mnist_int8(mnist_test[0][:60])
    ref = TflmModel(lenet_model_files["modern"]).run_batch(inputs.reshape(-1, 28, 28, 1))
    with run_host_device(host_device_binary) as (url, _):
        with DeviceSession(url) as session:
            info = session.info()
            assert "pixels" in info["encodings"].split(",") and session.encoder.pixels
            sent = session.stats.sent_bytes
            results = dict(session.infer_stream((i, inputs[i]) for i in range(60)))
            per_digit = (session.stats.sent_bytes - sent) / 60
            got = np.stack([results[i].output for i in range(60)])
            np.testing.assert_array_equal(got, ref.reshape(60, -1))
            assert per_digit < 145, per_digit
            assert session.stats.retransmissions == 0
            session.encoder = C.InputEncoder(["raw", "runs"])
            sent = session.stats.sent_bytes
            again = dict(session.infer_stream((i, inputs[i]) for i in range(20)))
            assert (session.stats.sent_bytes - sent) / 20 > 190
            np.testing.assert_array_equal(np.stack([again[i].output for i in range(20)]), ref[:20].reshape(20, -1))
            traces = session.trace(inputs[3])  # TRACE carries the pixel-coded input too
            assert len(traces) == info.int("traced_tensors")
