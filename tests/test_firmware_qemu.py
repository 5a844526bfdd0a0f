"""The firmware on the four emulated Cortex-M cores, through real QEMU and a real serial
link: boots, answers the host protocol, logits byte-identical with TFLM, per-inference
guest-instruction counts; faults reported over the UART; QEMU never outlives its owner."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from lenet_edge.firmware_templates.boards import EMULATED_BOARDS, get_board
from lenet_edge.firmware_templates.build import build_firmware
from lenet_edge.firmware_templates.qemu import pid_alive, run_qemu, start_qemu
from lenet_edge.firmware_templates.render import render_firmware
from tests.firmware_fixtures import (  # noqa: F401
    RawLink,
    classic_export_dir,
    export_dir,
    mnist_digits,
)

pytestmark = [pytest.mark.qemu, pytest.mark.arm]


def _wait_gone(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("variant", ["modern", "classic"])
@pytest.mark.parametrize("board_name", EMULATED_BOARDS)
def test_board_matches_tflm_over_serial(board_name, variant, request, mnist_digits, tmp_path):
    """Each board compiles the export with its own -mcpu, so this runs that core's kernel
    variant (Helium on the M55, DSP on the M4F, M7 and M33, portable C on the M3 and, on
    the micro:bit, the Cortex-M0); real boards run their own image on QEMU's chip model."""
    from lenet_edge.host.session import DeviceSession
    from lenet_edge.quantize.tflm import TflmModel

    export_dir = request.getfixturevalue("export_dir" if variant == "modern"
                                         else "classic_export_dir")
    inputs, _ = mnist_digits
    if variant == "classic":
        inputs = inputs[:50]
    expected = TflmModel(export_dir / "model" / "lenet5_int8.tflite").run_batch(inputs)
    board = get_board(board_name)
    build = build_firmware(board, export_dir, tmp_path / "fw")
    if variant == "modern" and board.is_qemu:
        # The whole validating firmware in 4 KB: data + bss (arena included) + stack reserve
        # (the target is for the QEMU boards; the Cortex-M0's Thumb-1 code needs more stack).
        assert build.ram_bytes <= 4096, build.sections
    elf = build.elf
    with run_qemu(board, elf, emulate=True) as url:
        assert re.fullmatch(r"socket://127\.0\.0\.1:\d+", url)
        with DeviceSession(url) as session:
            info = session.info()
            assert info.fields["board"] == board_name and info.fields["cpu"] == board.cpu
            assert info.fields["counter_unit"] == "guest_instructions"  # measured: emulated
            results = dict(session.infer_stream((i, inputs[i]) for i in range(len(inputs))))
            got = np.stack([results[i].output.reshape(-1) for i in range(len(inputs))])
            np.testing.assert_array_equal(got, expected)  # byte-identical logits, all 100
            # A clean link: nothing resent (the device's receive ring never overflowed).
            assert session.link_stats["retransmissions"] == 0, session.link_stats
            counts = np.array([results[i].count for i in range(len(inputs))])
            # A LeNet-5 inference is millions of guest instructions, not zero or noise.
            assert counts.min() > 100_000 and counts.max() < 10 * counts.min()
            # The same digit, one request at a time (no bytes arriving mid-inference):
            # the count is deterministic up to one 10 ms time-base interrupt.
            again = [session.infer(inputs[0]).count for _ in range(3)]
            assert max(again) - min(again) <= 200, again
            # The deepest paths (TRACE streams from inside the model's callback, INFO): the
            # painted stack's high-water mark stays within the static bound the build
            # reserved the stack from.
            traces = session.trace(inputs[1])
            assert traces[-1].data.tolist() == expected[1].reshape(-1).tolist()
            used = session.info(refresh=True).int("stack_used")
            assert 0 < used <= build.stack["worst_case_bytes"] < build.sections["stack"], (used, build.stack)


def test_fault_is_reported_over_uart(export_dir, tmp_path):
    """A program that faults (on purpose) gets its fault named, with the faulting pc."""
    fw = render_firmware("qemu-mps2-an385", export_dir, tmp_path / "fw")
    (fw / "common" / "main.c").write_text(textwrap.dedent("""\
        #include "agent_io.h"
        #include "board.h"
        int main(void)
        {
            static const char banner[] = "lenet-edge fault-test\\r\\n";
            board_init();
            board_uart_write((const uint8_t *)banner, sizeof banner - 1u);
            /* Fault when the host says so: the receive interrupt hands the byte to the
             * (never started) agent, which counts it as lost. */
            while (firmware_agent.rx_lost == 0u) {
                board_sleep_unless_changed(&firmware_agent.rx_lost, 0u);
            }
            *(volatile uint32_t *)0xFFFFFFF0u = 1u;      /* no memory there: BusFault */
            for (;;) {
            }
        }
    """))
    elf = build_firmware("qemu-mps2-an385", export_dir, fw).elf
    with run_qemu("qemu-mps2-an385", elf) as url:
        link = RawLink(url)
        assert link.read_until(b"\n").startswith(b"lenet-edge ")
        link.write(b"!")
        link.read_until(b"\n")
        report = link.read_until(b"\n").decode()
        link.close()
    assert report.startswith("FAULT BusFault pc=0x"), report
    assert "bfar=0xfffffff0" in report


def test_reset_restarts_the_firmware(export_dir, tmp_path):
    elf = build_firmware("qemu-mps2-an386", export_dir, tmp_path / "fw").elf
    with start_qemu("qemu-mps2-an386", elf) as q:
        link = RawLink(q.url)
        banner = link.read_until(b"\n")
        assert banner.startswith(b"lenet-edge ") and b"qemu-mps2-an386" in banner
        q.reset()
        assert link.read_until(b"\n") == banner
        link.close()


def test_qemu_threads_share_one_cpu_unless_told_not_to(export_dir, tmp_path, monkeypatch):
    """Pinned (its UART hand-overs stay on one CPU); LENET_EDGE_QEMU_PIN=0 turns it off."""
    allowed = os.sched_getaffinity(0)
    if len(allowed) < 2:
        pytest.skip("one CPU: nothing to pin")
    elf = build_firmware("qemu-mps2-an385", export_dir, tmp_path / "fw").elf
    for pin, expected_cpus in (("1", 1), ("0", len(allowed))):
        monkeypatch.setenv("LENET_EDGE_QEMU_PIN", pin)
        with start_qemu("qemu-mps2-an385", elf) as q:
            link = RawLink(q.url)  # the guest (and its vCPU thread) starts on connect
            assert link.read_until(b"\n").startswith(b"lenet-edge ")
            threads = [int(t) for t in os.listdir(f"/proc/{q.pid}/task")]
            masks = {frozenset(os.sched_getaffinity(t)) for t in threads}
            link.close()
        assert len(threads) > 1 and len(masks) == 1, masks
        assert len(next(iter(masks))) == expected_cpus


def test_qemu_killed_on_exception_and_interrupt(export_dir, tmp_path):
    elf = build_firmware("qemu-mps2-an385", export_dir, tmp_path / "fw").elf
    for exc in (RuntimeError("test failure"), KeyboardInterrupt()):
        with pytest.raises(type(exc)):
            with start_qemu("qemu-mps2-an385", elf) as q:
                pid = q.pid
                assert pid_alive(pid)
                raise exc
        assert _wait_gone(pid), f"QEMU {pid} outlived its context after {exc!r}"


def test_qemu_dies_with_a_killed_parent(export_dir, tmp_path):
    """Even SIGKILL of the Python process (no cleanup code runs) takes QEMU down."""
    elf = build_firmware("qemu-mps2-an385", export_dir, tmp_path / "fw").elf
    script = (
        "import sys, time\n"
        "from lenet_edge.firmware_templates.qemu import start_qemu\n"
        f"with start_qemu('qemu-mps2-an385', {str(elf)!r}) as q:\n"
        "    print(q.pid, flush=True)\n"
        "    time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(parent.stdout.readline())
        assert pid_alive(pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert _wait_gone(pid), f"QEMU {pid} outlived its killed parent"
    finally:
        parent.kill()


def test_cli_flash_qemu_prints_url_and_stops_on_ctrl_c(export_dir, tmp_path):
    fw = tmp_path / "fw"
    build_firmware("qemu-mps2-an500", export_dir, fw)
    proc = subprocess.Popen(
        [sys.executable, "-m", "lenet_edge", "flash", "--board", "qemu-mps2-an500",
         "--export", str(export_dir), "--firmware-dir", str(fw)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        first = proc.stdout.readline()
        pid = int(re.search(r"\(pid (\d+)\)", first).group(1))
        url = re.fullmatch(r"serial: (socket://127\.0\.0\.1:\d+)\n", proc.stdout.readline()).group(1)
        link = RawLink(url)
        assert b"qemu-mps2-an500 cortex-m7" in link.read_until(b"\n")
        link.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
        assert "QEMU stopped" in proc.stderr.read()
        assert _wait_gone(pid), f"QEMU {pid} outlived `lenet-edge flash`"
    finally:
        proc.kill()
