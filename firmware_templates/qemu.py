"""Run firmware on an emulated board: `with run_qemu(board, elf) as url: ...`.

QEMU runs with `-icount shift=0` (one guest instruction = one virtual nanosecond, so the
SysTick count is a deterministic guest-instruction count) and UART0 on a local TCP port
in server mode, `wait=on`: the guest starts only when the first client connects, so no
boot output is lost. The yielded URL is for pyserial (`serial.serial_for_url`).

QEMU never outlives its context: it is killed on normal exit, on exceptions and on
Ctrl-C; it also gets SIGKILL if the Python process dies (PR_SET_PDEATHSIG), and an
atexit hook kills any instance still registered.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from lenet_edge.errors import LenetEdgeError
from lenet_edge.firmware_templates.boards import Board, get_board

QEMU_BINARY = "qemu-system-arm"
QEMU_INSTALL = "apt-get install --no-install-recommends qemu-system-arm"
START_TIMEOUT_S = 20.0

_live: set[subprocess.Popen] = set()
_live_lock = threading.Lock()


def _kill_all_live() -> None:
    with _live_lock:
        procs = list(_live)
    for proc in procs:
        _stop(proc)


atexit.register(_kill_all_live)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    # Own session: a terminal's Ctrl-C reaches Python, which then stops QEMU in order,
    # instead of QEMU quitting under the host code's feet.
    os.setsid()


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    with _live_lock:
        _live.discard(proc)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def qemu_command(board: Board, elf: Path, port: int, monitor: Path | None = None) -> list[str]:
    cmd = [QEMU_BINARY, "-M", board.qemu_machine]
    if board.qemu_cpu:
        cmd += ["-cpu", board.qemu_cpu]
    cmd += [
        "-nographic",
        "-icount", "shift=0",
        "-kernel", str(elf),
        "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on",
        "-monitor", f"unix:{monitor},server=on,wait=off" if monitor else "none",
    ]
    return cmd


class QemuInstance:
    """A running QEMU: `url` for pyserial, `pid`, `reset()` (system reset), `stop()`."""

    def __init__(self, board: Board, elf: Path):
        self.board = board
        self.elf = elf
        self.url = ""
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="lenet-edge-qemu-")
        self._monitor = Path(self._tmp.name) / "monitor.sock"
        self._stderr: list[str] = []

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else -1

    @property
    def stderr_text(self) -> str:
        return "".join(self._stderr)

    def start(self, attempts: int = 5) -> QemuInstance:
        for _ in range(attempts):
            self.port = _free_port()
            if self._launch():
                self.url = f"socket://127.0.0.1:{self.port}"
                return self
        raise LenetEdgeError(f"QEMU did not start for {self.board.name}:\n{self.stderr_text.strip()}")

    def _launch(self) -> bool:
        """Start QEMU and wait until it listens; False if the port was taken meanwhile."""
        self._stderr = []
        cmd = qemu_command(self.board, self.elf, self.port, self._monitor)
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_die_with_parent,
        )
        with _live_lock:
            _live.add(proc)
        self.proc = proc
        listening = threading.Event()

        def pump() -> None:
            for line in proc.stderr:
                self._stderr.append(line)
                if "waiting for connection" in line:
                    listening.set()

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if listening.wait(0.05):
                return True
            if proc.poll() is not None:
                time.sleep(0.05)  # let the pump collect the message
                _stop(proc)
                if "in use" in self.stderr_text:
                    return False
                raise LenetEdgeError(
                    f"QEMU exited ({proc.returncode}) for {self.board.name}:\n{self.stderr_text.strip()}"
                )
        _stop(proc)
        raise LenetEdgeError(f"QEMU did not open its serial port within {START_TIMEOUT_S:.0f} s")

    def reset(self) -> None:
        """System reset of the emulated board (as a reset button would), via the monitor."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(self._monitor))
            s.sendall(b"system_reset\n")
            time.sleep(0.1)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
        self._tmp.cleanup()


def check_qemu() -> str:
    path = shutil.which(QEMU_BINARY)
    if path is None:
        raise LenetEdgeError(f"{QEMU_BINARY} not found; install it with: {QEMU_INSTALL}")
    return path


@contextlib.contextmanager
def start_qemu(board: str | Board, elf: str | Path):
    """Context manager yielding a started `QemuInstance` (url, pid, reset())."""
    board = get_board(board)
    if not board.is_qemu:
        raise LenetEdgeError(f"board '{board.name}' is real hardware, not emulated by QEMU; use `lenet-edge flash`")
    check_qemu()
    elf = Path(elf)
    if not elf.is_file():
        raise LenetEdgeError(f"no firmware image at {elf}; run `lenet-edge build --board {board.name}` first")
    instance = QemuInstance(board, elf)
    try:
        yield instance.start()
    finally:
        instance.stop()


@contextlib.contextmanager
def run_qemu(board: str | Board, elf: str | Path):
    """Context manager yielding the pyserial URL `socket://127.0.0.1:PORT` of UART0."""
    with start_qemu(board, elf) as instance:
        yield instance.url


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists and is not a zombie (for tests and tools)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        return state != "Z"
    return True
