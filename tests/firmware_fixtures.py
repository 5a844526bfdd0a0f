"""Fixtures shared by the firmware tests (imported by tests/test_firmware_*.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


def firmware_model_bytes(tmp_path_factory, variant: str = "modern") -> bytes:
    """The bundled model (what ships) or, while it is not committed yet, the project's
    LeNet-5 with seeded random weights, converted by the real TFLite converter."""
    from lenet_edge.bundled import bundled_model
    from lenet_edge.errors import LenetEdgeError

    try:
        return bundled_model(variant).read_bytes()
    except LenetEdgeError:
        from lenet_edge.train.mnist import load_mnist
        from tests.codegen_models import lenet_tflite

        return lenet_tflite(variant, seed=1, images=load_mnist("test")[0])


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory) -> Path:
    """`lenet-edge export --target cortex-m` output (model/ and c/) for the firmware tests."""
    from lenet_edge.flows import export_model as export

    out = tmp_path_factory.mktemp("fw-export")
    export(firmware_model_bytes(tmp_path_factory), out, measure_tflm=False, measure_code=False)
    return out


@pytest.fixture(scope="session")
def classic_export_dir(tmp_path_factory) -> Path:
    """The classic variant exported: its fused tanh + average pool and C3 zero slices run
    through every core's kernels (scalar, DSP, Helium) too."""
    from lenet_edge.flows import export_model as export

    out = tmp_path_factory.mktemp("fw-export-classic")
    export(firmware_model_bytes(tmp_path_factory, "classic"), out, measure_tflm=False,
           measure_code=False)
    return out


@pytest.fixture(scope="session")
def classic_1998_export_dir(tmp_path_factory) -> Path:
    """classic-1998 exported: its subsampling (DEPTHWISE_CONV_2D + TANH) fused into the conv
    steps, through every core's kernels."""
    from lenet_edge.flows import export_model as export

    out = tmp_path_factory.mktemp("fw-export-classic-1998")
    export(firmware_model_bytes(tmp_path_factory, "classic-1998"), out, measure_tflm=False,
           measure_code=False)
    return out


@pytest.fixture(scope="session")
def mnist_digits():
    """The first 100 MNIST test digits as int8 model inputs (pixel - 128), and labels."""
    from lenet_edge.quantize.evaluate import pixels_to_int8
    from lenet_edge.train.mnist import load_mnist

    images, labels = load_mnist("test")
    return pixels_to_int8(images[:100]), labels[:100]


class RawLink:
    """A plain TCP connection to QEMU's UART for reading the boot banner.

    pyserial's socket:// drains whatever is waiting when it opens, and QEMU (wait=on)
    starts the guest the moment a client connects, so the banner can be lost there;
    a plain socket discards nothing.
    """

    def __init__(self, url: str, timeout: float = 5.0):
        import socket

        host, port = url.removeprefix("socket://").rsplit(":", 1)
        self._sock = socket.create_connection((host, int(port)), timeout=timeout)
        self._buffer = b""

    def read_until(self, terminator: bytes = b"\n") -> bytes:
        """Bytes up to and including ``terminator``; what arrived before a timeout else."""
        import socket

        while terminator not in self._buffer:
            try:
                chunk = self._sock.recv(4096)
            except socket.timeout:
                break
            if not chunk:
                break
            self._buffer += chunk
        end = self._buffer.find(terminator)
        end = len(self._buffer) if end < 0 else end + len(terminator)
        line, self._buffer = self._buffer[:end], self._buffer[end:]
        return line

    def write(self, data: bytes) -> None:
        self._sock.sendall(data)

    def close(self) -> None:
        self._sock.close()
