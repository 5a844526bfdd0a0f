"""Every board whose image QEMU can run, validated end to end through the CLI: the MPS
FPGA images and the real boards' own, unmodified images on QEMU's models of their chips
(nucleo-f446re on netduinoplus2, bbc-microbit on microbit, stm32vldiscovery). Their
clock set-up, UART driver, time base and counter calibration run here, so a user who
flashes the board is not the first to execute them."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from lenet_edge.cli import main
from lenet_edge.firmware_templates.boards import EMULATED_BOARDS, get_board
from tests.host_fixtures import lenet_model_files, mnist_test, modern_export  # noqa: F401

pytestmark = [pytest.mark.qemu, pytest.mark.arm]

# What QEMU 7.2's machines run their counter on (their source: the sysclk each machine
# sets, or the nRF51 TIMER0's 16 MHz). The firmware measures it against guest
# instructions at start-up; these are the emulator's facts it must find.
EMULATED_TIMEBASE_HZ = {
    "mps2-an385": 25_000_000, "mps2-an386": 25_000_000, "mps2-an500": 25_000_000,
    "mps2-an505": 20_000_000, "mps3-an547": 32_000_000, "netduinoplus2": 168_000_000,
    "microbit": 16_000_000, "stm32vldiscovery": 24_000_000,
}
# The clock each image reports: the one it set up, or (QEMU's STM32 models read 0 from
# the RCC, so the first bounded wait times out) the reset clock it fell back to.
EXPECTED_CLOCK = {
    "nucleo-f446re": (16_000_000, 1, "oscillator_timeout"),
    "stm32vldiscovery": (8_000_000, 1, "oscillator_timeout"),
}


@pytest.mark.parametrize("board_name", EMULATED_BOARDS)
def test_validate_every_emulated_board(board_name, modern_export, tmp_path):
    board = get_board(board_name)
    out = tmp_path / "report"
    args = ["validate", "--board", board_name, "--export", str(modern_export),
            "--count", "100", "--per-layer", "1", "--report", str(out)]
    if not board.is_qemu:
        args.append("--emulate")
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["count"] == 100 and not report["partial"]
    assert report["agreement"]["device_tflm_exact_logits"] == 1.0  # all 100 byte-identical
    assert report["per_layer"]["identical_digits"] == 1
    assert report["per_layer"]["first_difference"] is None

    info = report["info"]
    assert info["board"] == board_name and info["cpu"] == board.cpu
    timebase_hz = EMULATED_TIMEBASE_HZ[board.emulator.machine]
    assert int(info["emulated"]) == 1
    assert info["counter_unit"] == "guest_instructions" == report["latency"]["unit"]
    assert int(info["counter_hz"]) == 1_000_000_000
    assert int(info["timebase_hz"]) == timebase_hz
    assert int(info["counter_resolution"]) == math.ceil(1e9 / timebase_hz)
    assert info["counter_source"] == board.timebase  # no DWT under QEMU 7.2
    clock_hz, fault, status = EXPECTED_CLOCK.get(board_name, (board.clock_hz, 0, "ok"))
    assert (int(info["clock_hz"]), int(info["clock_fault"]), info["clock_status"]) == (
        clock_hz, fault, status)
    # A LeNet-5 inference is about a million guest instructions (2.4 M on the Cortex-M0,
    # about 0.2 M on the Helium M55).
    assert 100_000 < report["latency"]["median"] < 4_000_000


def test_counter_rate_is_measured_not_assumed(modern_export, tmp_path):
    """An image built believing its board runs at 50 MHz still times itself right under
    QEMU's 25 MHz: the tick rate comes from the run, not from the board table."""
    from lenet_edge.firmware_templates import boards
    from lenet_edge.firmware_templates.build import build_firmware
    from lenet_edge.firmware_templates.qemu import run_qemu
    from lenet_edge.host.session import DeviceSession

    honest = get_board("qemu-mps2-an385")
    wrong = dataclasses.replace(honest, clock_hz=50_000_000)
    counts = {}
    for board in (honest, wrong):
        elf = build_firmware(board, modern_export, tmp_path / str(board.clock_hz)).elf
        with run_qemu(board, elf) as url, DeviceSession(url) as session:
            info = session.info()
            assert int(info.fields["clock_hz"]) == board.clock_hz  # what it was told
            assert int(info.fields["timebase_hz"]) == 25_000_000  # what it measured
            counts[board.clock_hz] = session.infer(np.zeros(784, np.int8)).count
    assert abs(counts[50_000_000] - counts[25_000_000]) <= 80, counts
    assert boards.BOARDS["qemu-mps2-an385"].clock_hz == 25_000_000


def test_emulate_errors_name_the_boards(modern_export, tmp_path, capsys):
    code = main(["validate", "--board", "nucleo-g071rb", "--emulate", "--export",
                 str(modern_export), "--report", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "QEMU has no model" in err and "bbc-microbit" in err
    code = main(["validate", "--board", "nucleo-f446re", "--export", str(modern_export),
                 "--report", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "--port" in err and "--emulate" in err
