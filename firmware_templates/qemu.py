"""Run firmware on an emulated board: `with run_qemu(board, elf) as url: ...`.

QEMU runs with `-icount shift=0` (one guest instruction = one virtual nanosecond, so the
SysTick count is a deterministic guest-instruction count) and UART0 on a local TCP port
in server mode, `wait=on`: the guest starts only when the first client connects, so no
boot output is lost. The yielded URL is for pyserial (`serial.serial_for_url`).

QEMU's threads are pinned to one host CPU (the quietest one). Its UART model takes one
byte at a time, each a hand-over between QEMU's I/O thread and its vCPU thread; on a
virtual machine whose CPUs the hypervisor deschedules (steal time), every wake-up that
crosses CPUs can wait a whole time slice. On one CPU the hand-overs stay local: measured
here, 2-3x the digits/s at 25-30 % steal, and no change to the instruction counts.

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
from typing import Callable

from lenet_edge.errors import LenetEdgeError
from lenet_edge.firmware_templates.boards import Board, emulated_board

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


def _child_setup(cpu: int | None) -> Callable[[], None]:
    def setup() -> None:  # runs in the child between fork and exec
        _die_with_parent()
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    return setup


def _quietest_cpu(sample_s: float = 0.05) -> int | None:
    """The allowed CPU with the most idle time over a short sample; None: don't pin
    (can't tell, one CPU, or LENET_EDGE_QEMU_PIN=0)."""
    if os.environ.get("LENET_EDGE_QEMU_PIN", "1") == "0":
        return None
    try:
        allowed = os.sched_getaffinity(0)
    except AttributeError:  # not Linux
        return None
    if len(allowed) < 2:
        return None

    def idle() -> dict[int, int]:
        out = {}
        with open("/proc/stat") as f:
            for line in f:
                name, *fields = line.split()
                if name.startswith("cpu") and name[3:].isdigit():
                    out[int(name[3:])] = int(fields[3]) + int(fields[4])  # idle + iowait
        return out

    try:
        before = idle()
        time.sleep(sample_s)
        after = idle()
    except (OSError, ValueError, IndexError):
        return None
    candidates = [cpu for cpu in sorted(allowed) if cpu in before and cpu in after]
    if not candidates:
        return None
    # Ties (an idle machine) go to a CPU that depends on the process, so that parallel
    # test workers do not all stack their emulators on CPU 0.
    turn = os.getpid() % len(candidates)
    candidates = candidates[turn:] + candidates[:turn]
    return max(candidates, key=lambda cpu: after[cpu] - before[cpu])


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


def qemu_command(board: Board, elf: Path, port: int, monitor: Path | None = None,
                 extra_args: tuple[str, ...] = ()) -> list[str]:
    emulator = board.emulator
    cmd = [QEMU_BINARY, "-M", emulator.machine]
    if emulator.cpu:
        cmd += ["-cpu", emulator.cpu]
    cmd += [
        "-nographic",
        "-icount", "shift=0",
        "-kernel", str(elf),
        # `-serial` i is the machine's (i+1)-th UART: the ones before the console get null.
        *["-serial", "null"] * emulator.serial_index,
        "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on",
        "-monitor", f"unix:{monitor},server=on,wait=off" if monitor else "none",
        *extra_args,  # e.g. `-plugin` (the bench's cycle estimator)
    ]
    return cmd


class QemuInstance:
    """A running QEMU: `url` for pyserial, `pid`, `reset()` (system reset), `stop()`."""

    def __init__(self, board: Board, elf: Path, extra_args: tuple[str, ...] = (),
                 pin: bool = True):
        self.board = board
        self.elf = elf
        self.extra_args = tuple(extra_args)
        self.pin = pin  # to the quietest CPU (unless LENET_EDGE_QEMU_PIN=0)
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
        # Sampled once, not per port attempt.
        child_setup = _child_setup(_quietest_cpu() if self.pin else None)
        for _ in range(attempts):
            self.port = _free_port()
            if self._launch(child_setup):
                self.url = f"socket://127.0.0.1:{self.port}"
                return self
        raise LenetEdgeError(f"QEMU did not start for {self.board.name}:\n{self.stderr_text.strip()}")

    def _launch(self, child_setup: Callable[[], None]) -> bool:
        """Start QEMU and wait until it listens; False if the port was taken meanwhile."""
        self._stderr = []
        cmd = qemu_command(self.board, self.elf, self.port, self._monitor, self.extra_args)
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=child_setup,
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
def start_qemu(board: str | Board, elf: str | Path, emulate: bool = False,
               extra_args: tuple[str, ...] = (), pin: bool = True):
    """Context manager yielding a started `QemuInstance` (url, pid, reset()); ``pin=False``
    leaves it to the OS which CPU it runs on.

    A real board's own image runs on QEMU's model of its chip when `emulate` is set
    (and the board table names one); a clear error otherwise."""
    board = emulated_board(board, emulate)
    check_qemu()
    elf = Path(elf)
    if not elf.is_file():
        raise LenetEdgeError(f"no firmware image at {elf}; run `lenet-edge build --board {board.name}` first")
    instance = QemuInstance(board, elf, extra_args, pin)
    try:
        yield instance.start()
    finally:
        instance.stop()


@contextlib.contextmanager
def run_qemu(board: str | Board, elf: str | Path, emulate: bool = False,
             extra_args: tuple[str, ...] = (), pin: bool = True):
    """Context manager yielding the pyserial URL `socket://127.0.0.1:PORT` of the console
    (``extra_args``: more QEMU arguments, e.g. a `-plugin`)."""
    with start_qemu(board, elf, emulate, extra_args, pin) as instance:
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
