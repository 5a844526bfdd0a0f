"""Compile the rendered firmware: `build_firmware(board, export_dir) -> BuildResult`.

Runs the project's own Makefile (the same `make` a user runs by hand), then measures the
image: flash and RAM per section (text, rodata, weights, data, stack, arena, bss), the
worst-case stack from GCC's stack-usage/call-graph output (computed by the build, which
reserves that bound plus a margin as the stack), and checks that no heap code
(malloc, _sbrk) was linked.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lenet_edge import toolchain
from lenet_edge.errors import LenetEdgeError
from lenet_edge.firmware_templates.boards import Board, get_board
from lenet_edge.firmware_templates.render import firmware_dir_of, sync_firmware, target_name
from lenet_edge.firmware_templates.uart import check_baud

CROSS = toolchain.CROSS
HEAP_SYMBOLS = ("malloc", "_malloc_r", "free", "_free_r", "calloc", "realloc", "_sbrk", "_sbrk_r")

# Section -> (memory, category shown in the report).
SECTION_KINDS = {
    ".isr_vector": ("flash", "text"),
    ".text": ("flash", "text"),
    ".ARM.exidx": ("flash", "rodata"),
    ".rodata": ("flash", "rodata"),
    ".weights": ("flash", "weights"),
    ".data": ("both", "data"),
    ".stack": ("ram", "stack"),
    ".arena": ("ram", "arena"),
    ".bss": ("ram", "bss"),
}
CATEGORIES = ("text", "rodata", "weights", "data", "stack", "arena", "bss")


@dataclass
class BuildResult:
    board: str
    firmware_dir: Path
    elf: Path
    bin: Path
    hex: Path
    sections: dict[str, int]  # category -> bytes (see CATEGORIES)
    flash_bytes: int
    ram_bytes: int
    flash_capacity: int
    ram_capacity: int
    stack: dict = field(default_factory=dict)  # StackReport.to_dict()
    # What this build did to an existing rendering of the project (paths relative to
    # firmware_dir; see render.sync_firmware): files brought up to date with lenet-edge's
    # templates, edited files kept although their template changed, and where the files
    # of a rendering by an older lenet-edge (no rendered.json) were copied before it was
    # rendered again.
    updated_files: list[str] = field(default_factory=list)
    kept_edited_files: list[str] = field(default_factory=list)
    backup_dir: Path | None = None
    # When the folder was rendered for another board before: which, and the edited files
    # that were copied to backup_dir before it was rendered afresh for this one.
    switched_from: str | None = None
    edited_files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("firmware_dir", "elf", "bin", "hex", "backup_dir"):
            d[key] = None if d[key] is None else str(d[key])
        return d

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return path


def check_toolchain() -> None:
    """One clear error naming the apt command when the GNU Arm toolchain is missing."""
    toolchain.check_toolchain()


def _check_no_heap(elf: Path) -> None:
    out = subprocess.run([CROSS + "nm", str(elf)], capture_output=True, text=True, check=True)
    names = {line.split()[-1] for line in out.stdout.splitlines() if line.strip()}
    found = sorted(names.intersection(HEAP_SYMBOLS))
    if found:
        raise LenetEdgeError(f"heap functions were linked into {elf.name}: {', '.join(found)} (the firmware must not use a heap)")


def measure(board: Board, elf: Path) -> tuple[dict[str, int], int, int]:
    raw = toolchain.section_sizes(elf)
    sections = dict.fromkeys(CATEGORIES, 0)
    flash = ram = 0
    for name, size in raw.items():
        if name not in SECTION_KINDS:
            continue
        memory, category = SECTION_KINDS[name]
        sections[category] += size
        if memory in ("flash", "both"):
            flash += size
        if memory in ("ram", "both"):
            ram += size
    return sections, flash, ram


def build_firmware(
    board: str | Board,
    export_dir: str | Path,
    firmware_dir: str | Path | None = None,
    jobs: int = 2,
    json_path: str | Path | None = None,
    rerender: bool = False,
    baud: int | None = None,
) -> BuildResult:
    """Render or update, then compile the firmware for `board` from `export_dir/c/`.

    `firmware_dir` defaults to `export_dir/firmware`; it is rendered when missing or when
    it was rendered for another board. An existing project for the same board is brought
    up to date with lenet-edge's templates file by file: unedited rendered files are
    replaced when their template's output changed, files the user edited are kept
    (`kept_edited_files` lists those whose template changed too); see
    `render.sync_firmware`. `rerender=True` renders it afresh, discarding edits.
    Writes `build/<target>.{elf,bin,hex}` and `build/<target>.json` (the report) there.
    `baud`: the console UART's rate (default: the one the folder was rendered with, else
    the board's); refused when the board's UART cannot make it within 2 %.
    """
    board = get_board(board)
    if baud is not None:
        check_baud(board, baud)
    check_toolchain()
    export_dir = Path(export_dir)
    fw = firmware_dir_of(export_dir, firmware_dir)
    sync = sync_firmware(board, export_dir, fw, rerender=rerender, baud=baud)

    proc = subprocess.run(["make", "-C", str(fw), f"-j{jobs}", "all"], capture_output=True, text=True)
    if proc.returncode != 0:
        log = (proc.stdout + proc.stderr).strip().splitlines()
        raise LenetEdgeError(f"firmware build failed for {board.name}:\n" + "\n".join(log[-40:]))

    build_dir = fw / "build"
    target = target_name(board)
    elf = build_dir / f"{target}.elf"
    _check_no_heap(elf)
    sections, flash, ram = measure(board, elf)
    # Written by the build itself (common/stack_bound.py), which sized the stack from it.
    stack = json.loads((build_dir / "stack.json").read_text(encoding="utf-8"))
    result = BuildResult(
        board=board.name,
        firmware_dir=fw,
        elf=elf,
        bin=build_dir / f"{target}.bin",
        hex=build_dir / f"{target}.hex",
        sections=sections,
        flash_bytes=flash,
        ram_bytes=ram,
        flash_capacity=board.flash.length,
        ram_capacity=board.ram.length,
        stack=stack,
        updated_files=sync.updated_files,
        kept_edited_files=sync.kept_edited_files,
        backup_dir=sync.backup_dir,
        switched_from=sync.switched_from,
        edited_files=sync.edited_files,
    )
    result.write_json(json_path or build_dir / f"{target}.json")
    return result


def _files(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


def print_sync(console, result: BuildResult, rerender: bool = False) -> None:
    """What the build changed in an existing firmware project, and the edits it kept."""
    updated = result.updated_files
    if result.switched_from is not None and result.switched_from != result.board:
        console.print(f"{result.firmware_dir} was rendered for {result.switched_from}: rendered "
                      f"it for {result.board}", markup=False, highlight=False, soft_wrap=True)
        if result.backup_dir is not None:
            console.print(
                f"[yellow]your edits ({', '.join(result.edited_files)}) were copied to "
                f"{result.backup_dir} first[/yellow]", markup=True, highlight=False, soft_wrap=True)
    elif result.backup_dir is not None:
        console.print(
            f"[yellow]{result.firmware_dir} was rendered by an older lenet-edge: rendered it "
            f"again ({_files(len(updated))} changed); the previous files are in "
            f"{result.backup_dir} (copy any edits of yours from there)[/yellow]",
            markup=True, highlight=False, soft_wrap=True,
        )
    elif updated:
        what = "re-rendered {} from lenet-edge's templates" if rerender else "updated {} from newer templates"
        console.print(f"{what.format(_files(len(updated)))}: {', '.join(updated)}",
                      markup=False, highlight=False, soft_wrap=True)
    for rel in result.kept_edited_files:
        console.print(
            f"[yellow]warning: kept your edit of {rel}; lenet-edge's template for it changed "
            f"— `lenet-edge build --rerender` to take the new one[/yellow]",
            markup=True, highlight=False, soft_wrap=True,
        )
