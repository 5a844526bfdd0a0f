"""A board outside the package (`--board-file`): a TOML file re-describing emulated boards
builds, runs in QEMU and validates exactly; the folder remembers it; every mistake in a
board file is one clear error naming the key."""

from __future__ import annotations

import json

import pytest

from lenet_edge.cli import main
from lenet_edge.errors import LenetEdgeError
from lenet_edge.firmware_templates.board_file import board_from_definition, load_board_file
from lenet_edge.firmware_templates.render import rendered_board
from tests.host_fixtures import lenet_model_files, mnist_test, modern_export  # noqa: F401

# qemu-mps2-an385, described from outside the package.
AN385 = """\
name = "my-an385"
chip = "MPS2 FPGA image, described by a user"
template = "qemu-mps"
cpu = "cortex-m3"
clock_hz = 25_000_000
num_irqs = 32
emulation_only = true

[flash]
origin = 0x00000000
length = 0x400000

[ram]
origin = 0x20000000
length = 0x400000

[uart]
base = 0x40004000
irq = 0
clock_hz = 25_000_000

[emulator]
machine = "mps2-an385"
"""

# An STM32F405 board (the Netduino Plus 2's chip) with the F4 template: a real board with
# its console on USART2, which QEMU's netduinoplus2 models.
F405 = """\
name = "my-f405"
chip = "STM32F405RG"
template = "stm32f4"
cpu = "cortex-m4"
clock_hz = 168_000_000
num_irqs = 82
console = "USART2 PA2/PA3 to a USB-serial adapter"

[flash]
origin = 0x08000000
length = 0x100000

[ram]
origin = 0x20000000
length = 0x20000

[uart]
base = 0x40004400
irq = 38
clock_hz = 42_000_000

[emulator]
machine = "netduinoplus2"
serial_index = 1

[flasher]
openocd_args = ["-f", "interface/stlink.cfg", "-f", "target/stm32f4x.cfg"]
"""


@pytest.mark.qemu
@pytest.mark.arm
@pytest.mark.parametrize("text", [AN385, F405], ids=["my-an385", "my-f405"])
def test_a_board_file_builds_runs_and_validates(text, modern_export, tmp_path):
    board_file = tmp_path / "board.toml"
    board_file.write_text(text)
    board = load_board_file(board_file)
    out = tmp_path / "report"
    args = ["validate", "--board-file", str(board_file), "--export", str(modern_export),
            "--count", "30", "--report", str(out)]
    assert main(args + ([] if board.is_qemu else ["--emulate"])) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["info"]["board"] == board.name
    assert report["agreement"]["device_tflm_exact_logits"] == 1.0


@pytest.mark.arm
def test_a_folder_remembers_a_board_file(modern_export, tmp_path, capsys):
    board_file = tmp_path / "board.toml"
    board_file.write_text(F405)
    export = tmp_path / "export"
    assert main(["export", "--board-file", str(board_file), "--no-tflm-arena", "--out",
                 str(export)]) == 0
    board_file.unlink()  # the folder keeps the definition
    assert main(["build", "--export", str(export)]) == 0
    assert rendered_board(export / "firmware") == "my-f405"
    assert (export / "firmware" / "build" / "lenet5-my-f405.elf").is_file()
    config = (export / "firmware" / "common" / "board_config.h").read_text()
    assert '"my-f405"' in config and '"cortex-m4"' in config
    capsys.readouterr()


def _definition(text: str) -> dict:
    import tomllib

    return tomllib.loads(text)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("cpu"), "cpu is missing"),
    (lambda d: d.update(cpu="cortex-m99"), "not in the CPU table"),
    (lambda d: d.update(template="esp32"), "not a template"),
    (lambda d: d.update(name="qemu-mps2-an385"), "is a built-in board"),
    (lambda d: d.update(name="My Board"), "lower-case"),
    (lambda d: d.update(clock_hz="fast"), "clock_hz must be a whole number"),
    (lambda d: d.update(clock_hz=0), "clock_hz must be between"),
    (lambda d: d.update(colour="red"), "colour is not a board-file key"),
    (lambda d: d["uart"].update(irq=40), "uart.irq must be an external interrupt"),
    (lambda d: d["uart"].update(speed=1), "uart.speed is not a board-file key"),
    (lambda d: d["ram"].update(length=0x800), "less than the 4 KB"),
    (lambda d: d.update(uart_rx_buffer=1000), "power of two"),
    (lambda d: d.pop("emulator"), "emulation_only needs an [emulator]"),
    (lambda d: d["flash"].update(origin=-1), "flash.origin must be a 32-bit address"),
])
def test_board_file_mistakes_are_named(edit, message):
    definition = _definition(AN385)
    edit(definition)
    with pytest.raises(LenetEdgeError, match=message.replace("[", r"\[")):
        board_from_definition(definition, "board.toml")


def test_unreadable_board_files(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(LenetEdgeError, match="not valid TOML"):
        load_board_file(bad)
    assert main(["build", "--board-file", str(tmp_path / "none.toml"), "--export", str(tmp_path)]) == 2
    assert "cannot read board file" in capsys.readouterr().err
    assert main(["build", "--board", "qemu-mps2-an385", "--board-file", str(bad),
                 "--export", str(tmp_path)]) == 2
    assert "not both" in capsys.readouterr().err
