"""Render the firmware project for one board: `render_firmware(board, export_dir)`.

Output layout (a self-contained Makefile project that compiles `../c/`):

    firmware/Makefile
    firmware/common/   main.c, board.h, board_common.c, protocol.c/.h, ... (+ rendered .j2)
    firmware/board/    the board folder's files (board.c, and any override of common/)

A file in the board folder replaces the common file of the same name (after dropping
`.j2`), so a board can bring its own start-up or linker script.
"""

from __future__ import annotations

import math
import os
import shutil
from fractions import Fraction
from importlib.resources import files
from pathlib import Path

import jinja2

from lenet_edge import __version__
from lenet_edge.errors import LenetEdgeError
from lenet_edge.firmware_templates.boards import Board, get_board

TEMPLATE_ROOT = Path(str(files("lenet_edge.firmware_templates")))
COMMON_DIR = TEMPLATE_ROOT / "common"
BOARDS_DIR = TEMPLATE_ROOT / "boards"
DEFAULT_OPT = "-O2"
_SKIP_SUFFIXES = (".pyc",)


def target_name(board: Board) -> str:
    return f"lenet5-{board.name}"


def _template_files(folder: Path) -> dict[str, Path]:
    """Output name -> source path for one template folder (sorted, deterministic)."""
    out = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.endswith(_SKIP_SUFFIXES) and not path.name.startswith("."):
            out[path.name.removesuffix(".j2")] = path
    return out


def _context(board: Board, model_dir: str, ldscript: str, opt: str) -> dict:
    step = Fraction(1_000_000_000, board.clock_hz) if board.is_qemu else Fraction(1)
    return {
        "board": board,
        "version": __version__,
        "target": target_name(board),
        "model_dir": model_dir,
        "ldscript": ldscript,
        "opt": opt,
        "counter_mul": step.numerator,
        "counter_div": step.denominator,
        # An integer for C: steps alternate between floor and ceil when not whole.
        "counter_resolution": f"{math.ceil(step)}u",
        "v6m": board.cpu.startswith("cortex-m0") or board.cpu == "cortex-m1",
        "v8m": board.cpu in ("cortex-m33", "cortex-m35p", "cortex-m55", "cortex-m85"),
    }


def render_firmware(
    board: str | Board,
    export_dir: str | Path,
    firmware_dir: str | Path | None = None,
    opt: str = DEFAULT_OPT,
) -> Path:
    """Render the firmware project for `board` into `export_dir/firmware/` (or `firmware_dir`).

    The project compiles the generated C library in `export_dir/c/`. Rendering is
    deterministic: the same inputs give byte-identical files. Returns the project folder.
    """
    board = get_board(board)
    export_dir = Path(export_dir)
    model_c = export_dir / "c"
    if not (model_c / "lenet5_model.h").is_file():
        raise LenetEdgeError(
            f"no generated C library in {model_c} (missing lenet5_model.h); run "
            f"`lenet-edge export --target cortex-m --out {export_dir}` first"
        )
    fw = Path(firmware_dir) if firmware_dir is not None else export_dir / "firmware"
    board_dir = BOARDS_DIR / board.template
    if not board_dir.is_dir():
        raise LenetEdgeError(f"board '{board.name}' names template folder {board_dir}, which does not exist")

    board_files = _template_files(board_dir)
    common_files = {k: v for k, v in _template_files(COMMON_DIR).items() if k not in board_files}
    ld_in_board = "linker.ld" in board_files
    ldscript = ("board/" if ld_in_board else "common/") + "linker.ld"
    model_dir = os.path.relpath(model_c.resolve(), fw.resolve()).replace(os.sep, "/")
    context = _context(board, model_dir, ldscript, opt)

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(board_dir), str(COMMON_DIR)]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=False,
    )

    # Start clean so files dropped from the templates do not linger; keep nothing else.
    for sub in ("common", "board"):
        if (fw / sub).exists():
            shutil.rmtree(fw / sub)
    (fw / "common").mkdir(parents=True, exist_ok=True)
    (fw / "board").mkdir(parents=True, exist_ok=True)

    for sub, mapping in (("common", common_files), ("board", board_files)):
        for out_name, src in mapping.items():
            if out_name == "Makefile":
                continue
            dest = fw / sub / out_name
            if src.suffix == ".j2":
                dest.write_text(env.get_template(src.name).render(context), encoding="utf-8")
            else:
                shutil.copyfile(src, dest)
    makefile_src = board_files.get("Makefile") or common_files["Makefile"]
    (fw / "Makefile").write_text(env.get_template(makefile_src.name).render(context), encoding="utf-8")
    (fw / "board.txt").write_text(board.name + "\n", encoding="utf-8")
    return fw


def rendered_board(firmware_dir: str | Path) -> str | None:
    """The board a firmware folder was rendered for, or None if it was not rendered here."""
    marker = Path(firmware_dir) / "board.txt"
    return marker.read_text(encoding="utf-8").strip() if marker.is_file() else None
