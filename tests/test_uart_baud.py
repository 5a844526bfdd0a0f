"""Any baud rate: the divisor of each UART family as its reference manual defines it, the
C the firmware runs (common/uart_divisor.h, compiled here for the host) equal to its Python
twin, build-time refusal of rates a board cannot make, and the device reporting the
divisor it computed from the clock it actually runs on."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lenet_edge.cli import main
from lenet_edge.errors import LenetEdgeError
from lenet_edge.firmware_templates import uart
from lenet_edge.firmware_templates.boards import get_board
from tests.host_fixtures import lenet_model_files, mnist_test, modern_export  # noqa: F401

COMMON = Path(__file__).resolve().parent.parent / "firmware_templates" / "common"
BAUDS = (1200, 9600, 57600, 115200, 230400, 460800, 921600, 1_000_000, 2_000_000)
CLOCKS = (8_000_000, 16_000_000, 20_000_000, 24_000_000, 25_000_000, 42_000_000,
          64_000_000, 84_000_000)


def test_stm32_usart_divisor_is_the_reference_manuals():
    # RM0390 25.4.4 (16x oversampling): baud = f_ck / USARTDIV, BRR = 16 * USARTDIV.
    for clock in CLOCKS:
        for baud in BAUDS:
            s = uart.stm32_usart(clock, baud)
            usartdiv = clock / (16 * baud)
            if 1 <= usartdiv < 4096:  # reachable: BRR is USARTDIV to the nearest 1/16
                assert abs(s.divisor / 16 - usartdiv) <= 1 / 32
                assert s.baud == round(clock / s.divisor)
    # The Nucleo's USART2 on APB1 at 42 MHz carries what an ST-LINK V2-1 VCP offers.
    assert uart.stm32_usart(42_000_000, 2_000_000).divisor == 21  # exact
    assert uart.stm32_usart(42_000_000, 921_600).divisor == 46  # 913,043 baud, -0.93 %
    assert abs(uart.stm32_usart(42_000_000, 921_600).error(921_600)) < 0.01
    assert uart.stm32_usart(42_000_000, 115_200).divisor == 365  # 115,068 baud


def test_nrf51_baudrate_matches_the_reference_manuals_table():
    table = {9600: 0x00275000, 57600: 0x00EBF000, 115200: 0x01D7E000, 230400: 0x03AFB000,
             250000: 0x04000000, 1_000_000: 0x10000000}
    for baud, register in table.items():
        assert uart.nrf51(16_000_000, baud).divisor == register, baud


def test_cmsdk_divisor():
    assert uart.cmsdk(25_000_000, 115200) == uart.UartSetting(217, 115207)
    assert uart.cmsdk(25_000_000, 2_000_000).divisor == 16  # the minimum the UART takes


def test_c_divisors_equal_their_python_twin(tmp_path):
    source = tmp_path / "divisors.c"
    source.write_text(
        '#include <stdio.h>\n#include "uart_divisor.h"\n'
        "int main(void) {\n"
        f"    const unsigned clocks[] = {{{', '.join(map(str, CLOCKS))}}};\n"
        f"    const unsigned bauds[] = {{{', '.join(map(str, BAUDS))}}};\n"
        "    for (unsigned c = 0; c < sizeof clocks / sizeof *clocks; c++)\n"
        "        for (unsigned b = 0; b < sizeof bauds / sizeof *bauds; b++) {\n"
        "            unsigned s = stm32_usart_brr(clocks[c], bauds[b]);\n"
        "            unsigned m = cmsdk_bauddiv(clocks[c], bauds[b]);\n"
        "            unsigned n = nrf51_baudrate(bauds[b]);\n"
        '            printf("%u %u %u %u %u %u %u %u\\n", clocks[c], bauds[b], s,\n'
        "                   stm32_usart_baud(clocks[c], s), m, cmsdk_baud(clocks[c], m), n,\n"
        "                   nrf51_baud(n));\n"
        "        }\n"
        "    return 0;\n}\n")
    exe = tmp_path / "divisors"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", f"-I{COMMON}",
                    str(source), "-o", str(exe)], check=True)
    lines = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split("\n")
    rows = [list(map(int, line.split())) for line in lines if line]
    assert len(rows) == len(CLOCKS) * len(BAUDS)
    for clock, baud, brr, brr_baud, div, div_baud, reg, reg_baud in rows:
        assert uart.stm32_usart(clock, baud) == uart.UartSetting(brr, brr_baud)
        assert uart.cmsdk(clock, baud) == uart.UartSetting(div, div_baud)
        assert uart.nrf51(clock, baud) == uart.UartSetting(reg, reg_baud)


def test_a_rate_the_board_cannot_make_is_refused(tmp_path, capsys):
    code = main(["build", "--board", "stm32vldiscovery", "--baud", "2000000",
                 "--export", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "nearest rate is 1500000 baud" in err and not (tmp_path / "firmware").exists()
    assert uart.check_baud(get_board("nucleo-f446re"), 2_000_000).divisor == 21
    with pytest.raises(LenetEdgeError, match="cannot run at 2000000 baud"):
        uart.check_baud(get_board("stm32vldiscovery"), 2_000_000)  # 24 MHz: BRR 12 < 16
    with pytest.raises(LenetEdgeError, match="positive"):
        uart.check_baud(get_board("nucleo-f446re"), 0)


@pytest.mark.qemu
@pytest.mark.arm
@pytest.mark.parametrize("board_name", ["nucleo-f446re", "qemu-mps2-an385"])
def test_device_reports_the_divisor_it_computed(board_name, modern_export, tmp_path):
    """Built for 921600 baud: the device computes its divisor from the clock it runs on
    (under QEMU the F4 image is on its 16 MHz reset clock), and validation runs."""
    board = get_board(board_name)
    out = tmp_path / "report"
    args = ["validate", "--board", board_name, "--export", str(modern_export), "--count", "20",
            "--baud", "921600", "--report", str(out)]
    assert main(args + ([] if board.is_qemu else ["--emulate"])) == 0
    info = json.loads((out / "report.json").read_text())["info"]
    want = uart.uart_setting(board.uart["family"], int(info["clock_hz"]), 921600)
    assert int(info["uart_baud"]) == 921600
    assert (int(info["uart_divisor"]), int(info["uart_baud_actual"])) == (want.divisor, want.baud)
