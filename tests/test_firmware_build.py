"""Firmware rendering and builds: every board, strict warnings, no heap, sizes, stack."""

from __future__ import annotations

import filecmp
import json
import os
import subprocess
import sys

import pytest

from lenet_edge.errors import LenetEdgeError
from lenet_edge.firmware_templates.boards import BOARDS, get_board
from lenet_edge.firmware_templates.build import HEAP_SYMBOLS, build_firmware
from lenet_edge.firmware_templates.render import render_firmware
from tests.firmware_fixtures import export_dir  # noqa: F401

pytestmark = pytest.mark.arm


def _symbols(elf) -> dict[str, int]:
    out = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True)
    table = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3:
            table[parts[2]] = int(parts[0], 16)
    return table


def _vector_table(elf, board) -> list[int]:
    """The words of .isr_vector, read back from the linked image."""
    raw = subprocess.run(
        ["arm-none-eabi-objcopy", "-O", "binary", "--only-section=.isr_vector", str(elf), "/dev/stdout"],
        capture_output=True, check=True,
    ).stdout
    return [int.from_bytes(raw[i:i + 4], "little") for i in range(0, len(raw), 4)]


@pytest.mark.parametrize("board_name", list(BOARDS))
def test_board_builds_strict_without_heap(board_name, export_dir, tmp_path):
    board = get_board(board_name)
    result = build_firmware(board, export_dir, tmp_path / "fw")
    makefile = (tmp_path / "fw" / "Makefile").read_text()
    assert "-Wall -Wextra -Werror" in makefile and "-fstack-usage" in makefile
    for path in (result.elf, result.bin, result.hex):
        assert path.is_file() and path.stat().st_size > 0

    # Sizes: every category is measured, the model's weights and arena are where the
    # linker script puts them, and the image fits the part.
    s = result.sections
    assert s["text"] > 1000 and s["weights"] > 10_000 and s["arena"] > 1000
    assert s["stack"] == board.stack_bytes
    assert result.flash_bytes <= board.flash.length and result.ram_bytes <= board.ram.length
    assert result.flash_bytes == s["text"] + s["rodata"] + s["weights"] + s["data"]
    report = json.loads(result.elf.with_suffix(".json").read_text())
    assert report["sections"] == s and report["board"] == board_name

    # No heap code linked, stack analysis from -fstack-usage / call graph fits.
    symbols = _symbols(result.elf)
    assert not set(HEAP_SYMBOLS) & set(symbols)
    assert list((tmp_path / "fw" / "build").rglob("*.su"))
    stack = result.stack
    assert stack["main_path"][:3] == ["reset_c", "main", "protocol_serve"]
    assert 0 < stack["worst_case_bytes"] < stack["reserved_bytes"]
    assert not stack["recursive"] and not stack["dynamic_frames"]

    # Vector table: initial SP, reset, and the UART interrupt at its IRQ number.
    vectors = _vector_table(result.elf, board)
    assert len(vectors) == 16 + board.num_irqs
    assert vectors[0] == symbols["_estack"]
    assert vectors[1] & ~1 == symbols["Reset_Handler"] and vectors[1] & 1  # Thumb
    assert vectors[15] & ~1 == symbols["SysTick_Handler"]
    assert vectors[16 + board.uart["irq"]] & ~1 == symbols["port_uart_irq_handler"]
    assert vectors[3] & ~1 == symbols["HardFault_Handler"]


def test_render_is_deterministic_and_self_contained(export_dir, tmp_path):
    a = render_firmware("nucleo-f446re", export_dir, tmp_path / "a")
    b = render_firmware("nucleo-f446re", export_dir, tmp_path / "b")
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    match, mismatch, errors = filecmp.cmpfiles(a, b, [str(f) for f in files], shallow=False)
    assert not mismatch and not errors
    # A user builds it with plain `make`, outside lenet-edge.
    subprocess.run(["make", "-s", "-C", str(a)], check=True, capture_output=True)
    assert (a / "build" / "lenet5-nucleo-f446re.hex").is_file()


def test_one_firmware_folder_rebuilds_for_another_board(export_dir, tmp_path):
    """Switching boards in one folder re-renders and recompiles everything with the new
    board's flags (a hard-float object must never reach the soft-float Cortex-M0+ link)."""
    fw = tmp_path / "fw"
    for board in ("nucleo-f446re", "nucleo-g071rb", "nucleo-f446re"):
        result = build_firmware(board, export_dir, fw)
        assert result.elf.name == f"lenet5-{board}.elf" and result.elf.is_file()
    header = (fw / "common" / "board_config.h").read_text()
    assert '"nucleo-f446re"' in header


def test_heap_use_fails_the_build(export_dir, tmp_path):
    fw = render_firmware("qemu-mps2-an385", export_dir, tmp_path / "fw")
    main_c = fw / "common" / "main.c"
    main_c.write_text(main_c.read_text().replace(
        "board_init();", "board_init();\n    if (malloc(64) == 0) { board_reset(); }"
    ).replace('#include "board.h"', '#include <stdlib.h>\n#include "board.h"'))
    with pytest.raises(LenetEdgeError, match="firmware build failed|heap"):
        build_firmware("qemu-mps2-an385", export_dir, fw)


def test_warning_fails_the_build_with_compiler_output(export_dir, tmp_path):
    fw = render_firmware("qemu-mps2-an386", export_dir, tmp_path / "fw")
    (fw / "board" / "sloppy.c").write_text("int sloppy(int x);\nint sloppy(int x) { int unused; return x; }\n")
    with pytest.raises(LenetEdgeError, match="unused"):
        build_firmware("qemu-mps2-an386", export_dir, fw)


def test_unknown_board_and_missing_export(tmp_path):
    with pytest.raises(LenetEdgeError, match="unknown board 'nope'.*qemu-mps2-an385"):
        render_firmware("nope", tmp_path)
    with pytest.raises(LenetEdgeError, match="lenet-edge export --target cortex-m"):
        render_firmware("qemu-mps2-an385", tmp_path)


def _cli(args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "lenet_edge", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_cli_build_prints_table_and_writes_json(export_dir, tmp_path):
    out = tmp_path / "sizes.json"
    proc = _cli(["build", "--board", "nucleo-g071rb", "--export", str(export_dir),
                 "--firmware-dir", str(tmp_path / "fw"), "--json", str(out)])
    assert proc.returncode == 0, proc.stderr
    for word in ("text", "weights", "arena", "stack", "flash total", "RAM total"):
        assert word in proc.stdout
    data = json.loads(out.read_text())
    assert data["board"] == "nucleo-g071rb" and data["flash_bytes"] > 0 and data["ram_bytes"] > 0


def test_cli_build_without_toolchain_says_how_to_install(export_dir, tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    env = dict(os.environ, PATH=str(empty))
    proc = _cli(["build", "--export", str(export_dir), "--firmware-dir", str(tmp_path / "fw")], env=env)
    assert proc.returncode == 2
    assert "apt-get install --no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_flash_real_board_without_flasher(export_dir, tmp_path):
    fw = tmp_path / "fw"
    result = build_firmware("nucleo-f446re", export_dir, fw)
    empty = tmp_path / "bin"
    empty.mkdir()
    env = dict(os.environ, PATH=str(empty))
    proc = _cli(["flash", "--board", "nucleo-f446re", "--image", str(result.hex)], env=env)
    if proc.returncode != 2 or "no flash tool" not in proc.stderr:
        # pyOCD importable in this interpreter: it runs and must report the missing probe.
        assert proc.returncode == 2 and "no debug probe" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_flash_real_board_reports_missing_probe(export_dir, tmp_path):
    """OpenOCD present but no probe connected: a clear message, not the raw tool log."""
    result = build_firmware("nucleo-g071rb", export_dir, tmp_path / "fw")
    tools = tmp_path / "bin"
    tools.mkdir()
    # A stand-in for the external tool, printing what OpenOCD prints without an ST-LINK.
    fake = tools / "openocd"
    fake.write_text("#!/bin/sh\necho 'Error: open failed' >&2\nexit 1\n")
    fake.chmod(0o755)
    env = dict(os.environ, PATH=f"{tools}:/usr/bin:/bin")
    proc = _cli(["flash", "--board", "nucleo-g071rb", "--image", str(result.elf), "--tool", "openocd"], env=env)
    assert proc.returncode == 2
    assert "no debug probe found by openocd" in proc.stderr and "nucleo-g071rb" in proc.stderr
    assert "Traceback" not in proc.stderr
