"""Fixtures for the host (protocol, session, validation) tests.

The device is real in every case: either the validation agent + the generated C library compiled
for this machine with a TCP "UART" (tests/host_board/host_board.c; fast), or the real
firmware in QEMU behind its TCP serial port.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from lenet_edge.host.faultproxy import FaultProxy, FaultRates
from tests.codegen_fixtures import lenet_model_files, mnist_test  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
COMMON = ROOT / "firmware_templates" / "common"
AGENT = ROOT / "firmware_templates" / "agent"
HOST_BOARD = Path(__file__).resolve().parent / "host_board"
QEMU_BOARD = "qemu-mps2-an386"


@pytest.fixture(scope="session")
def modern_export(lenet_model_files, tmp_path_factory):
    """Export dir (model/, c/) of the modern LeNet-5 (bundled, or a seeded stand-in)."""
    from lenet_edge.flows import export_model as export

    out = tmp_path_factory.mktemp("host-export")
    export(lenet_model_files["modern"].read_bytes(), out, measure_tflm=False, measure_code=False)
    return out


def compile_host_device(c_dir: Path, out: Path, extra: tuple[str, ...] = ()) -> Path:
    # The firmware's own main loop and agent adapter, on board.h implemented for the host.
    sources = [AGENT / "lenet_agent.c", COMMON / "agent_io.c", COMMON / "main.c",
               HOST_BOARD / "host_board.c", *sorted(Path(c_dir).glob("*.c"))]
    cmd = ["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", *extra,
           f"-I{AGENT}", f"-I{COMMON}", f"-I{HOST_BOARD}", f"-I{c_dir}", *map(str, sources), "-o", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out


@pytest.fixture(scope="session")
def host_device_binary(modern_export, tmp_path_factory):
    return compile_host_device(modern_export / "c", tmp_path_factory.mktemp("hostdev") / "device")


@contextlib.contextmanager
def run_host_device(binary: Path):
    """Start the host build; yields its pyserial URL; always stops it."""
    proc = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, text=True, env={"HOST_BOARD_PORT": "0"})
    try:
        line = proc.stdout.readline()
        port = int(line.split()[1])
        yield f"socket://127.0.0.1:{port}", proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def qemu_elf(modern_export):
    from lenet_edge.firmware_templates.build import build_firmware

    return build_firmware(QEMU_BOARD, modern_export).elf


@contextlib.contextmanager
def tcp_server(behaviour):
    """A local TCP server; `behaviour(conn)` runs for each connection. Yields the URL."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=behaviour, args=(conn, stop), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"socket://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        server.close()


class GoesDeaf(FaultProxy):
    """A proxy that passes the first `up_bytes` host bytes, then swallows everything the
    host sends (a dead link, or a device that hung); answers still pass."""

    def __init__(self, port, up_bytes: int):
        super().__init__(port, FaultRates())
        self.allowance = up_bytes

    def _mangle(self, data, upstream):
        if upstream:
            passed, self.allowance = data[: max(self.allowance, 0)], self.allowance - len(data)
            yield passed, 0.0
        else:
            yield data, 0.0

