"""Firmware rendering and builds: every board, strict warnings, no heap, sizes, stack."""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lenet_edge import __version__
from lenet_edge.errors import LenetEdgeError
from lenet_edge.firmware_templates.boards import BOARDS, get_board
from lenet_edge.firmware_templates.build import HEAP_SYMBOLS, build_firmware
from lenet_edge.firmware_templates.render import (
    render_firmware,
    render_project,
    rendered_board,
    sync_firmware,
)
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
    assert s["stack"] == result.stack["reserved_bytes"]
    assert result.flash_bytes <= board.flash.length and result.ram_bytes <= board.ram.length
    assert result.flash_bytes == s["text"] + s["rodata"] + s["weights"] + s["data"]
    report = json.loads(result.elf.with_suffix(".json").read_text())
    assert report["sections"] == s and report["board"] == board_name

    # No heap code linked, stack analysis from -fstack-usage / call graph fits.
    symbols = _symbols(result.elf)
    assert not set(HEAP_SYMBOLS) & set(symbols)
    assert list((tmp_path / "fw" / "build").rglob("*.su"))
    stack = result.stack
    assert stack["main_path"][:3] == ["reset_c", "main", "lenet_agent_poll"]
    # The reserve is the bound plus the stated margin (Makefile STACK_MARGIN), 8-aligned.
    assert stack["reserved_bytes"] == (stack["worst_case_bytes"] + stack["margin_bytes"] + 7) // 8 * 8
    assert 0 < stack["worst_case_bytes"] < stack["reserved_bytes"] and not stack["problems"]
    assert not stack["recursive"] and not stack["dynamic_frames"]

    # Vector table: initial SP, reset, and the UART interrupt at its IRQ number.
    vectors = _vector_table(result.elf, board)
    assert len(vectors) == 16 + board.num_irqs
    assert vectors[0] == symbols["_estack"]
    assert vectors[1] & ~1 == symbols["Reset_Handler"] and vectors[1] & 1  # Thumb
    if board.timebase == "systick":
        assert vectors[15] & ~1 == symbols["SysTick_Handler"]
    else:  # no SysTick on the chip (nRF51): its timer's interrupt instead
        assert "SysTick_Handler" not in symbols
        assert vectors[16 + board.timebase_irq] & ~1 == symbols["timebase_irq_handler"]
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


UPDATE_BOARD = "qemu-mps2-an386"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _manifest(fw) -> dict:
    return json.loads((fw / "rendered.json").read_text())


def _set_manifest_hash(fw, rel: str, digest: str) -> None:
    manifest = _manifest(fw)
    manifest["files"][rel] = digest
    (fw / "rendered.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def test_render_twice_is_byte_identical_with_manifest(export_dir, tmp_path):
    fw = tmp_path / "fw"
    project = render_project(UPDATE_BOARD, export_dir, fw)
    assert project == render_project(UPDATE_BOARD, export_dir, fw) and not fw.exists()
    render_firmware(UPDATE_BOARD, export_dir, fw)
    first = {p.relative_to(fw): p.read_bytes() for p in fw.rglob("*") if p.is_file()}
    mtimes = {p: p.stat().st_mtime_ns for p in fw.rglob("*") if p.is_file()}
    render_firmware(UPDATE_BOARD, export_dir, fw)
    assert {p.relative_to(fw): p.read_bytes() for p in fw.rglob("*") if p.is_file()} == first
    assert {p: p.stat().st_mtime_ns for p in fw.rglob("*") if p.is_file()} == mtimes  # not rewritten
    manifest = _manifest(fw)
    assert (fw / "rendered.json").read_text() == json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    assert manifest["board"] == UPDATE_BOARD == rendered_board(fw)
    assert manifest["lenet_edge_version"] == __version__
    assert manifest["files"] == {rel: _sha256(data) for rel, data in project.items()}
    assert {str(rel) for rel in first} == set(project) | {"rendered.json", "board.txt"}


def test_build_takes_changed_templates_for_unedited_files(export_dir, tmp_path):
    """A file as an older lenet-edge rendered it (manifest hash matches, content stale) is
    replaced by the current template's output."""
    fw = render_firmware(UPDATE_BOARD, export_dir, tmp_path / "fw")
    fresh = render_project(UPDATE_BOARD, export_dir, fw)
    stale = b"/* lenet_agent.c as an older lenet-edge rendered it */\n" + fresh["common/lenet_agent.c"]
    (fw / "common" / "lenet_agent.c").write_bytes(stale)
    _set_manifest_hash(fw, "common/lenet_agent.c", _sha256(stale))
    # A template that no longer exists goes too, if unedited; a deleted file comes back.
    (fw / "common" / "dropped.h").write_bytes(b"/* dropped */\n")
    _set_manifest_hash(fw, "common/dropped.h", _sha256(b"/* dropped */\n"))
    (fw / "common" / "board_port.h").unlink()

    result = build_firmware(UPDATE_BOARD, export_dir, fw)
    assert (fw / "common" / "lenet_agent.c").read_bytes() == fresh["common/lenet_agent.c"]
    assert (fw / "common" / "board_port.h").read_bytes() == fresh["common/board_port.h"]
    assert not (fw / "common" / "dropped.h").exists()
    assert result.updated_files == ["common/board_port.h", "common/dropped.h", "common/lenet_agent.c"]
    assert result.kept_edited_files == []
    assert _manifest(fw)["files"] == {rel: _sha256(data) for rel, data in fresh.items()}
    report = json.loads(result.elf.with_suffix(".json").read_text())
    assert report["updated_files"] == result.updated_files and report["kept_edited_files"] == []


def test_build_keeps_user_edits(export_dir, tmp_path):
    fw = render_firmware(UPDATE_BOARD, export_dir, tmp_path / "fw")
    fresh = render_project(UPDATE_BOARD, export_dir, fw)
    # Edited, and lenet-edge's template for it changed since (the manifest records an
    # older rendering): kept and reported.
    protocol = fresh["common/lenet_agent.c"] + b"\n/* my protocol tweak */\n"
    (fw / "common" / "lenet_agent.c").write_bytes(protocol)
    _set_manifest_hash(fw, "common/lenet_agent.c", _sha256(b"an older rendering"))
    # Edited, template unchanged: kept, nothing to report.
    main_c = fresh["common/main.c"] + b"\n/* my main tweak */\n"
    (fw / "common" / "main.c").write_bytes(main_c)
    # A file of the user's own is left alone.
    (fw / "board" / "extra.c").write_bytes(b"int extra(void);\nint extra(void) { return 1; }\n")

    for _ in range(2):  # and stays an edit on the next build
        result = build_firmware(UPDATE_BOARD, export_dir, fw)
        assert (fw / "common" / "lenet_agent.c").read_bytes() == protocol
        assert (fw / "common" / "main.c").read_bytes() == main_c
        assert (fw / "board" / "extra.c").is_file()
        assert result.kept_edited_files == ["common/lenet_agent.c"] and result.updated_files == []
        files = _manifest(fw)["files"]
        assert files["common/lenet_agent.c"] == _sha256(b"an older rendering")
        assert files["common/main.c"] == _sha256(fresh["common/main.c"])
        assert "board/extra.c" not in files


def test_build_rerender_discards_edits(export_dir, tmp_path):
    fw = render_firmware(UPDATE_BOARD, export_dir, tmp_path / "fw")
    fresh = render_project(UPDATE_BOARD, export_dir, fw)
    (fw / "common" / "lenet_agent.c").write_bytes(fresh["common/lenet_agent.c"] + b"/* mine */\n")
    result = build_firmware(UPDATE_BOARD, export_dir, fw, rerender=True)
    assert (fw / "common" / "lenet_agent.c").read_bytes() == fresh["common/lenet_agent.c"]
    assert result.updated_files == ["common/lenet_agent.c"] and result.kept_edited_files == []
    assert _manifest(fw)["files"]["common/lenet_agent.c"] == _sha256(fresh["common/lenet_agent.c"])


def test_build_with_nothing_changed_rebuilds_nothing(export_dir, tmp_path):
    fw = tmp_path / "fw"
    first = build_firmware(UPDATE_BOARD, export_dir, fw)
    assert first.updated_files == [] and first.kept_edited_files == [] and first.backup_dir is None
    objects = sorted((fw / "build").rglob("*.o"))
    assert objects
    before = {p: p.stat().st_mtime_ns for p in objects}
    elf_before = first.elf.stat().st_mtime_ns
    time.sleep(0.05)
    again = build_firmware(UPDATE_BOARD, export_dir, fw)
    assert again.updated_files == [] and again.kept_edited_files == []
    assert {p: p.stat().st_mtime_ns for p in objects} == before
    assert again.elf.stat().st_mtime_ns == elf_before


def test_build_of_a_rendering_without_manifest_backs_it_up(export_dir, tmp_path):
    """Rendered by an older lenet-edge (board.txt only): edits cannot be told from stale
    files, so the old files are copied aside and the project is rendered again."""
    fw = render_firmware(UPDATE_BOARD, export_dir, tmp_path / "fw")
    fresh = render_project(UPDATE_BOARD, export_dir, fw)
    (fw / "rendered.json").unlink()
    assert rendered_board(fw) == UPDATE_BOARD  # from board.txt
    old = fresh["common/lenet_agent.c"] + b"/* old or edited: who knows */\n"
    (fw / "common" / "lenet_agent.c").write_bytes(old)
    (fw / "board" / "leftover.c").write_bytes(b"int leftover;\n")

    result = build_firmware(UPDATE_BOARD, export_dir, fw)
    assert result.backup_dir is not None and result.backup_dir.parent == fw
    assert result.backup_dir.name.startswith(".old-")
    assert (result.backup_dir / "common" / "lenet_agent.c").read_bytes() == old
    assert (result.backup_dir / "board" / "leftover.c").is_file()
    assert (result.backup_dir / "Makefile").read_bytes() == fresh["Makefile"]
    assert (fw / "common" / "lenet_agent.c").read_bytes() == fresh["common/lenet_agent.c"]
    assert not (fw / "board" / "leftover.c").exists()
    assert result.updated_files == ["board/leftover.c", "common/lenet_agent.c"]
    assert _manifest(fw)["files"] == {rel: _sha256(data) for rel, data in fresh.items()}

    # Such a folder that matches the templates needs no backup, only the manifest.
    (fw / "rendered.json").unlink()
    assert render_project(UPDATE_BOARD, export_dir, fw) == fresh
    report = sync_firmware(UPDATE_BOARD, export_dir, fw)
    assert report.backup_dir is None and report.updated_files == []
    assert (fw / "rendered.json").is_file()
    assert len(list(fw.glob(".old-*"))) == 1


def test_heap_use_fails_the_build(export_dir, tmp_path):
    fw = render_firmware("qemu-mps2-an385", export_dir, tmp_path / "fw")
    main_c = fw / "common" / "main.c"
    main_c.write_text(main_c.read_text().replace(
        "board_init();", "board_init();\n    if (malloc(64) == 0) { board_reset(); }"
    ).replace('#include "board.h"', '#include <stdlib.h>\n#include "board.h"'))
    with pytest.raises(LenetEdgeError, match="firmware build failed|heap"):
        build_firmware("qemu-mps2-an385", export_dir, fw)


@pytest.mark.parametrize("code, reason", [
    ("unsigned deep(unsigned n) { return n ? deep(n / 2u) + deep(n / 3u) + 1u : 0u; }", "recursion"),
    ("unsigned deep(unsigned n) { volatile char b[n + 1u]; b[0] = 1; return b[0]; }", "dynamic size"),
], ids=["recursion", "dynamic-frame"])
def test_unbounded_stack_fails_the_build(code, reason, export_dir, tmp_path):
    """The stack reserve is the static bound: no bound, no image."""
    fw = render_firmware("qemu-mps2-an385", export_dir, tmp_path / "fw")
    main_c = fw / "common" / "main.c"
    main_c.write_text(main_c.read_text().replace("int main(void)\n{", code.replace("unsigned deep", "static unsigned deep")
                      + "\n\nint main(void)\n{\n    if (deep(firmware_agent.rx_head) == 7u) board_reset();"))
    with pytest.raises(LenetEdgeError, match=f"cannot bound the stack: .*{reason}"):
        build_firmware("qemu-mps2-an385", export_dir, fw)
    assert not list((fw / "build").glob("*.elf"))


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


def test_cli_build_reports_updates_and_kept_edits(export_dir, tmp_path):
    fw = render_firmware(UPDATE_BOARD, export_dir, tmp_path / "fw")
    fresh = render_project(UPDATE_BOARD, export_dir, fw)
    stale = b"/* stale */\n" + fresh["common/board_common.c"]
    (fw / "common" / "board_common.c").write_bytes(stale)
    _set_manifest_hash(fw, "common/board_common.c", _sha256(stale))
    (fw / "common" / "lenet_agent.c").write_bytes(fresh["common/lenet_agent.c"] + b"/* mine */\n")
    _set_manifest_hash(fw, "common/lenet_agent.c", _sha256(b"an older rendering"))
    args = ["build", "--board", UPDATE_BOARD, "--export", str(export_dir), "--firmware-dir", str(fw)]
    proc = _cli(args)
    assert proc.returncode == 0, proc.stderr
    assert "updated 1 file from newer templates: common/board_common.c" in proc.stdout
    assert ("warning: kept your edit of common/lenet_agent.c; lenet-edge's template for it changed "
            "— `lenet-edge build --rerender` to take the new one") in proc.stdout
    proc = _cli([*args, "--rerender"])
    assert proc.returncode == 0, proc.stderr
    assert "re-rendered 1 file from lenet-edge's templates: common/lenet_agent.c" in proc.stdout
    assert "warning" not in proc.stdout
    assert (fw / "common" / "lenet_agent.c").read_bytes() == fresh["common/lenet_agent.c"]
    help_text = _cli(["build", "--help"]).stdout
    assert "--rerender" in help_text and "discarding edits" in help_text


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


def test_a_firmware_folder_remembers_its_board(export_dir, tmp_path):
    """`build` and `flash` without --board use the board the folder was rendered for,
    never the default QEMU board."""
    fw = tmp_path / "fw"
    args = ["--export", str(export_dir), "--firmware-dir", str(fw)]
    assert _cli(["build", "--board", "bbc-microbit", *args]).returncode == 0
    proc = _cli(["build", *args])
    assert proc.returncode == 0, proc.stderr
    assert rendered_board(fw) == "bbc-microbit"
    report = json.loads((fw / "build" / "lenet5-bbc-microbit.json").read_text())
    assert report["board"] == "bbc-microbit"
    assert not (fw / "build" / "lenet5-qemu-mps2-an386.elf").exists()


def test_switching_a_folder_to_another_board_backs_up_edits(export_dir, tmp_path):
    fw = tmp_path / "fw"
    build_firmware("nucleo-f446re", export_dir, fw)
    edited = (fw / "board" / "board.c").read_bytes() + b"/* my clock tweak */\n"
    (fw / "board" / "board.c").write_bytes(edited)
    proc = _cli(["build", "--board", "stm32vldiscovery", "--export", str(export_dir),
                 "--firmware-dir", str(fw)])
    assert proc.returncode == 0, proc.stderr
    out = " ".join((proc.stdout + proc.stderr).split())
    assert "rendered for nucleo-f446re" in out and "board/board.c" in out
    backups = sorted(fw.glob(".old-*"))
    assert len(backups) == 1 and (backups[0] / "board" / "board.c").read_bytes() == edited
    assert rendered_board(fw) == "stm32vldiscovery"
    # Switching an unedited folder needs no backup.
    result = build_firmware("nucleo-f446re", export_dir, fw)
    assert result.switched_from == "stm32vldiscovery" and result.backup_dir is None
    assert len(list(fw.glob(".old-*"))) == 1


def test_boards_command_lists_every_board_as_in_the_readme():
    from lenet_edge.firmware_templates.cli import boards_markdown

    proc = _cli(["boards"])
    assert proc.returncode == 0
    for name in BOARDS:
        assert name in proc.stdout
    table = boards_markdown()
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert table in readme, "README's board list is `lenet-edge boards --markdown`"
    rows = json.loads(_cli(["boards", "--json"]).stdout)
    by_name = {r["board"]: r for r in rows}
    assert by_name["nucleo-g071rb"]["QEMU machine"] == "none"
    assert by_name["nucleo-g071rb"]["tests"] == "compiled only"
    assert by_name["nucleo-f446re"]["QEMU machine"].startswith("netduinoplus2")


def test_flash_without_a_probe_says_so_within_seconds(export_dir, tmp_path):
    """pyOCD's `load` waits forever for a probe unless told not to; lenet-edge never hangs
    (pyOCD is a test dependency, and this machine has no probe)."""
    pytest.importorskip("pyocd")
    result = build_firmware("nucleo-f446re", export_dir, tmp_path / "fw")
    for extra in ([], ["--probe", "0670FF0123456789"]):
        start = time.monotonic()
        proc = _cli(["flash", "--board", "nucleo-f446re", "--image", str(result.hex),
                     "--tool", "pyocd", *extra])
        assert time.monotonic() - start < 30
        assert proc.returncode == 2, proc.stderr
        assert "no debug probe" in proc.stderr or "no probe 0670FF0123456789" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_microbit_flashes_by_copying_onto_its_drive(export_dir, tmp_path):
    from lenet_edge.firmware_templates.flash import find_drive

    result = build_firmware("bbc-microbit", export_dir, tmp_path / "fw")
    mount = tmp_path / "media" / "user" / "MICROBIT"
    mount.mkdir(parents=True)
    (mount / "DETAILS.TXT").write_text("DAPLink Firmware\n")
    board = get_board("bbc-microbit")
    assert find_drive(board, roots=[tmp_path / "media"]) == mount
    assert find_drive(board, roots=[tmp_path / "nothing"]) is None
    proc = _cli(["flash", "--board", "bbc-microbit", "--image", str(result.elf),
                 "--drive", str(mount)])
    assert proc.returncode == 0, proc.stderr
    assert (mount / result.hex.name).read_bytes() == result.hex.read_bytes()
    # No drive, no flasher: one message that says what to do.
    empty = tmp_path / "bin"
    empty.mkdir()
    proc = _cli(["flash", "--board", "bbc-microbit", "--image", str(result.elf), "--tool", "drive"],
                env=dict(os.environ, PATH=str(empty)))
    assert proc.returncode == 2 and "MICROBIT drive" in proc.stderr


def test_export_accepts_every_cpu_of_the_table(tmp_path):
    proc = _cli(["export", "--cpu", "cortex-m0", "--cpu", "cortex-m33", "--no-tflm-arena",
                 "--out", str(tmp_path / "out")])
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "out" / "export_report.json").read_text())
    assert set(report["code_bytes"]) == {"cortex-m0", "cortex-m33"}
    assert report["kernel_paths"] == ["dsp", "portable"]


def test_build_with_nothing_exported_exports_the_bundled_model(tmp_path, monkeypatch, capsys):
    """`lenet-edge build --board B` in an empty folder: the bundled model is exported into
    the default folder (./export, every command's) and its firmware built there."""
    from lenet_edge.bundled import bundled_model
    from lenet_edge.cli import main
    from lenet_edge.layout import ExportLayout

    monkeypatch.chdir(tmp_path)
    assert main(["build", "--board", "qemu-mps2-an385"]) == 0
    assert "no export in export: exporting the bundled model" in capsys.readouterr().out
    layout = ExportLayout()
    assert layout.model.read_bytes() == bundled_model().read_bytes()
    assert layout.has_library() and layout.agent_dir.is_dir()
    assert (layout.firmware_dir() / "build" / "lenet5-qemu-mps2-an385.elf").is_file()
