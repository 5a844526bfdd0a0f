"""Render the firmware project for one board: `render_firmware(board, export_dir)`.

Output layout (a self-contained Makefile project that compiles `../c/`):

    firmware/Makefile, CMakeLists.txt, arm-none-eabi.cmake   make, or CMake with that toolchain file
    firmware/common/   main.c, board.h, board_common.c, agent_io.c, lenet_agent.c/.h (the
                       validation agent, from agent/), stack_bound.py (from stack.py), ...
    firmware/board/    the board folder's files (board.c, and any override of common/)

    firmware/rendered.json  what was rendered: board, lenet-edge version, sha256 per file
    firmware/board.txt      the board name (read by older lenet-edge versions)

A file in the board folder replaces the common file of the same name (after dropping
`.j2`), so a board can bring its own start-up or linker script.

`render_project` is the pure part (the project as `{relative path: bytes}`, written
nowhere); `render_firmware` writes a fresh full rendering; `sync_firmware` brings an
existing rendering up to date with the current templates file by file, keeping the
files a user edited (see its docstring).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import jinja2

from lenet_edge import __version__
from lenet_edge.errors import LenetEdgeError
from lenet_edge.firmware_templates.boards import Board, get_board
from lenet_edge.layout import ExportLayout

TEMPLATE_ROOT = Path(str(files("lenet_edge.firmware_templates")))
COMMON_DIR = TEMPLATE_ROOT / "common"
AGENT_DIR = TEMPLATE_ROOT / "agent"  # the validation agent library (also shipped by export)
AGENT_SOURCES = ("lenet_agent.c", "lenet_agent.h")
BOARDS_DIR = TEMPLATE_ROOT / "boards"
DEFAULT_OPT = "-O2"
MANIFEST_NAME = "rendered.json"
BOARD_MARKER = "board.txt"
RENDERED_DIRS = ("common", "board")  # owned by the rendering, with the top-level files
TOP_LEVEL = ("Makefile", "CMakeLists.txt", "arm-none-eabi.cmake")  # rendered from common/
_SKIP_SUFFIXES = (".pyc",)


def target_name(board: Board) -> str:
    return f"lenet5-{board.name}"  # the firmware image, whatever the model's --name


def firmware_dir_of(export_dir: str | Path, firmware_dir: str | Path | None = None) -> Path:
    """Where a board's firmware project lives: `firmware_dir`, else `export_dir/firmware`."""
    return ExportLayout(export_dir).firmware_dir(firmware_dir)


def model_name(c_dir: Path) -> str:
    """The export's --name (its C library is NAME_model.h/.c); one clear error otherwise.
    An ensemble's c/ holds its nets' libraries too: its marker names the one to run."""
    from lenet_edge.codegen.ensemble import ensemble_name

    if (name := ensemble_name(c_dir)) is not None:
        return name
    headers = sorted(p.name for p in Path(c_dir).glob("*_model.h")) if Path(c_dir).is_dir() else []
    if len(headers) != 1:
        found = f" (found {', '.join(headers)})" if headers else " (no *_model.h)"
        raise LenetEdgeError(
            f"no single generated C library in {c_dir}{found}; run "
            f"`lenet-edge export --target cortex-m --out {Path(c_dir).parent}` first"
        )
    return headers[0].removesuffix("_model.h")


def _template_files(folder: Path) -> dict[str, Path]:
    """Output name -> source path for one template folder (sorted, deterministic)."""
    out = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.endswith(_SKIP_SUFFIXES) and not path.name.startswith("."):
            out[path.name.removesuffix(".j2")] = path
    return out


def _context(board: Board, model_dir: str, ldscript: str, opt: str, baud: int) -> dict:
    handlers = {board.uart["irq"]: "port_uart_irq_handler"}
    if board.timebase_irq is not None:
        handlers[board.timebase_irq] = "timebase_irq_handler"
    return {
        "board": board,
        "core": board.core,
        "version": __version__,
        "target": target_name(board),
        "model_dir": model_dir,
        "ldscript": ldscript,
        "opt": opt,
        "baud": baud,
        "irq_handlers": handlers,  # IRQ number -> handler in the vector table
        "v6m": board.core.is_v6m,
        "v8m": board.core.is_v8m,
    }


def render_project(
    board: str | Board,
    export_dir: str | Path,
    firmware_dir: str | Path | None = None,
    opt: str = DEFAULT_OPT,
    baud: int | None = None,
) -> dict[str, bytes]:
    """The firmware project for `board` as `{relative path: bytes}`, sorted; writes nothing.

    `firmware_dir` (default `export_dir/firmware`) only fixes the Makefile's relative path
    to `export_dir/c/`. Deterministic: the same inputs give the same bytes.
    """
    board = get_board(board)
    export_dir = Path(export_dir)
    model_c = ExportLayout(export_dir).c_dir
    name = model_name(model_c)
    fw = firmware_dir_of(export_dir, firmware_dir)
    board_dir = BOARDS_DIR / board.template
    if not board_dir.is_dir():
        raise LenetEdgeError(f"board '{board.name}' names template folder {board_dir}, which does not exist")

    board_files = _template_files(board_dir)
    common_files = {k: v for k, v in _template_files(COMMON_DIR).items() if k not in board_files}
    ld_in_board = "linker.ld" in board_files
    ldscript = ("board/" if ld_in_board else "common/") + "linker.ld"
    model_dir = os.path.relpath(model_c.resolve(), fw.resolve()).replace(os.sep, "/")
    context = _context(board, model_dir, ldscript, opt, baud or board.uart_baud) | {"name": name, "NAME": name.upper()}

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(board_dir), str(COMMON_DIR)]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=False,
    )

    def render(src: Path) -> bytes:
        return env.get_template(src.name).render(context).encode("utf-8")

    project: dict[str, bytes] = {}
    for sub, mapping in (("common", common_files), ("board", board_files)):
        for out_name, src in mapping.items():
            if out_name not in TOP_LEVEL:
                project[f"{sub}/{out_name}"] = render(src) if src.suffix == ".j2" else src.read_bytes()
    for top in TOP_LEVEL:
        project[top] = render(board_files.get(top) or common_files[top])
    # The firmware runs the same agent library that export ships to users.
    for name in AGENT_SOURCES:
        project[f"common/{name}"] = (AGENT_DIR / name).read_bytes()
    # The stack analysis runs inside the build (Makefile, CMake): one implementation.
    project["common/stack_bound.py"] = (TEMPLATE_ROOT / "stack.py").read_bytes()
    return dict(sorted(project.items()))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha256(path: Path) -> str | None:
    return _sha256(path.read_bytes()) if path.is_file() else None


def _write_if_changed(path: Path, data: bytes) -> bool:
    """Write `data` unless the file already holds it (so make sees no new timestamp)."""
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _write_metadata(fw: Path, board: Board, hashes: dict[str, str], opt: str,
                    baud: int | None = None) -> None:
    manifest = {
        "board": board.name,
        "lenet_edge_version": __version__,
        "opt": opt,
        "baud": baud or board.uart_baud,
        **({"board_definition": board.definition} if board.definition is not None else {}),
        "files": dict(sorted(hashes.items())),
    }
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    _write_if_changed(fw / MANIFEST_NAME, text.encode("utf-8"))
    _write_if_changed(fw / BOARD_MARKER, (board.name + "\n").encode("utf-8"))


def read_manifest(firmware_dir: str | Path) -> dict | None:
    """`firmware/rendered.json`, or None when missing or unreadable (older renderings)."""
    path = Path(firmware_dir) / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (isinstance(manifest, dict) and isinstance(manifest.get("board"), str)
            and isinstance(manifest.get("files"), dict)):
        return None
    return manifest


def _write_project(fw: Path, project: dict[str, bytes]) -> list[str]:
    """Make `fw` hold exactly `project` in Makefile, common/ and board/ (anything else there
    is removed); only files whose content differs are written. Returns what changed."""
    changed = []
    for sub in RENDERED_DIRS:
        folder = fw / sub
        if folder.exists() and not folder.is_dir():
            folder.unlink()
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                rel = f"{sub}/{path.name}"
                if rel not in project:
                    _remove(path)
                    changed.append(rel)
        folder.mkdir(parents=True, exist_ok=True)
    for rel, data in project.items():
        if _write_if_changed(fw / rel, data):
            changed.append(rel)
    return sorted(changed)


def render_firmware(
    board: str | Board,
    export_dir: str | Path,
    firmware_dir: str | Path | None = None,
    opt: str = DEFAULT_OPT,
    baud: int | None = None,
) -> Path:
    """Render the firmware project for `board` into `export_dir/firmware/` (or `firmware_dir`).

    A fresh full rendering: edits to rendered files and extra files in common/ and board/
    are discarded (`build/` is kept). The project compiles the generated C library in
    `export_dir/c/`. Rendering is deterministic: the same inputs give byte-identical
    files (files already holding the right bytes are not rewritten). Also writes
    `rendered.json` and `board.txt`. Returns the project folder.
    """
    board = get_board(board)
    export_dir = Path(export_dir)
    fw = firmware_dir_of(export_dir, firmware_dir)
    _write_fresh(fw, board, render_project(board, export_dir, fw, opt, baud), opt, baud)
    return fw


def _write_fresh(fw: Path, board: Board, project: dict[str, bytes], opt: str,
                 baud: int | None = None) -> list[str]:
    """Make `fw` exactly `project` and record it as rendered; returns what changed."""
    changed = _write_project(fw, project)
    _write_metadata(fw, board, {rel: _sha256(data) for rel, data in project.items()}, opt, baud)
    return changed


@dataclass
class SyncReport:
    """What `sync_firmware` did to an existing rendering (all paths relative to it)."""

    updated_files: list[str] = field(default_factory=list)  # written or removed
    kept_edited_files: list[str] = field(default_factory=list)  # edited, template changed too
    backup_dir: Path | None = None  # where the previous files were copied (see below)
    switched_from: str | None = None  # the board the folder was rendered for before
    edited_files: list[str] = field(default_factory=list)  # edits copied to backup_dir


def sync_firmware(
    board: str | Board,
    export_dir: str | Path,
    firmware_dir: str | Path | None = None,
    rerender: bool = False,
    baud: int | None = None,
) -> SyncReport:
    """Make the firmware project for `board` current with lenet-edge's templates.

    - No project there, or one rendered for another board: a fresh full rendering.
    - `rerender=True`: a fresh full rendering of the same board, discarding edits.
    - A project rendered for this board (with `rendered.json`): rendered again in memory
      and updated file by file. A file whose sha256 still matches the manifest is
      unedited: it is replaced when the new rendering differs (and only then, so make
      rebuilds nothing needlessly), removed when its template is gone, and rendered
      again when deleted. A file the user edited is kept as it is (and keeps its
      manifest hash, so it stays an edit); it is listed in `kept_edited_files` when the
      template's output for it changed too. Files the rendering never wrote (added by
      the user) are left alone.
    - A project rendered for this board by an older lenet-edge (`board.txt`, no
      `rendered.json`): which files were edited cannot be told, so if anything differs
      from the new rendering, the old Makefile, common/ and board/ are first copied to
      `firmware/.old-<timestamp>/` (`backup_dir`), then the project is rendered afresh.

    The render options recorded in the manifest (`opt`, and `baud` unless one is given)
    are kept.
    """
    board = get_board(board)
    export_dir = Path(export_dir)
    fw = firmware_dir_of(export_dir, firmware_dir)
    manifest = read_manifest(fw)
    same_board = rendered_board(fw) == board.name
    kept = manifest if manifest and manifest["board"] == board.name else {}
    opt = kept.get("opt", DEFAULT_OPT)
    if not isinstance(opt, str):
        opt = DEFAULT_OPT
    if baud is None:
        baud = kept.get("baud") if isinstance(kept.get("baud"), int) else board.uart_baud

    project = render_project(board, export_dir, fw, opt, baud)
    if not same_board:
        return _switch_board(board, fw, project, opt, manifest, baud)
    if rerender:
        return SyncReport(updated_files=_write_fresh(fw, board, project, opt, baud))
    if manifest is None:
        return _sync_legacy(board, fw, project, opt, baud)

    old_hashes = {rel: h for rel, h in manifest["files"].items() if isinstance(h, str) and _owned(rel)}
    hashes: dict[str, str] = {}
    report = SyncReport()
    for rel in sorted(set(project) | set(old_hashes)):
        path = fw / rel
        current = _file_sha256(path)
        old = old_hashes.get(rel)
        if rel not in project:  # dropped from the templates
            if current is None:
                continue
            if current == old:
                path.unlink()
                report.updated_files.append(rel)
            else:
                hashes[rel] = old
                report.kept_edited_files.append(rel)
            continue
        new = _sha256(project[rel])
        if current is None or current == old or current == new:
            if current != new:
                _write_if_changed(path, project[rel])
                report.updated_files.append(rel)
            hashes[rel] = new
        else:  # the user's edit: keep it, and keep it counted as one
            hashes[rel] = old if old is not None else new
            if new != old:
                report.kept_edited_files.append(rel)
    _write_metadata(fw, board, hashes, opt, baud)
    return report


def _owned(rel: str) -> bool:
    """Whether a manifest path lies in the rendering's places (never outside the folder)."""
    parts = rel.split("/")
    return rel in TOP_LEVEL or (len(parts) > 1 and parts[0] in RENDERED_DIRS and ".." not in parts
                                 and "" not in parts and "\\" not in rel)


def _project_files(fw: Path) -> dict[str, Path]:
    """The files in a project's rendered places (Makefile, common/, board/)."""
    found = {}
    for top in TOP_LEVEL:
        if (fw / top).is_file():
            found[top] = fw / top
    for sub in RENDERED_DIRS:
        if (fw / sub).is_dir():
            for path in sorted((fw / sub).rglob("*")):
                if path.is_file() or path.is_symlink():
                    found[path.relative_to(fw).as_posix()] = path
    return found


def _back_up(fw: Path) -> Path:
    """Copy the project's rendered places (Makefile, common/, board/) to a new
    `fw/.old-<timestamp>/`; returns it."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = fw / f".old-{stamp}"
    n = 1
    while backup.exists():
        n += 1
        backup = fw / f".old-{stamp}-{n}"
    backup.mkdir()
    for top in TOP_LEVEL:
        if (fw / top).exists():
            shutil.copy2(fw / top, backup / top, follow_symlinks=False)
    for sub in RENDERED_DIRS:
        if (fw / sub).is_dir():
            shutil.copytree(fw / sub, backup / sub, symlinks=True)
    return backup


def _sync_legacy(board: Board, fw: Path, project: dict[str, bytes], opt: str,
                 baud: int) -> SyncReport:
    """A same-board project without a manifest: back it up unless it already equals the
    new rendering, then render afresh (see `sync_firmware`)."""
    present = _project_files(fw)
    backup = None
    if any(rel not in project or path.is_symlink() or path.read_bytes() != project[rel]
           for rel, path in present.items()):
        backup = _back_up(fw)
    return SyncReport(updated_files=_write_fresh(fw, board, project, opt, baud), backup_dir=backup)


def _edited_files(fw: Path, manifest: dict) -> list[str]:
    """Rendered files whose content no longer matches the manifest (the user's edits)."""
    edited = []
    for rel, digest in sorted(manifest["files"].items()):
        if isinstance(digest, str) and _owned(rel):
            current = _file_sha256(fw / rel)
            if current is not None and current != digest:
                edited.append(rel)
    return edited


def _switch_board(board: Board, fw: Path, project: dict[str, bytes], opt: str,
                  manifest: dict | None, baud: int) -> SyncReport:
    """Render `fw` afresh for another board. The files the user edited (all of an older
    rendering's files, when there is no manifest to tell) are copied to
    `fw/.old-<timestamp>/` first, so no edit is lost."""
    previous = rendered_board(fw)
    present = _project_files(fw)
    if manifest is not None:
        edited = _edited_files(fw, manifest)
    else:
        edited = sorted(present)
    backup = _back_up(fw) if edited else None
    changed = _write_fresh(fw, board, project, opt, baud)
    return SyncReport(updated_files=changed if previous else [], backup_dir=backup,
                      switched_from=previous, edited_files=edited)


def rendered_board_definition(firmware_dir: str | Path) -> dict | None:
    """The board-file table a folder was rendered from (None for a built-in board)."""
    manifest = read_manifest(firmware_dir)
    definition = manifest.get("board_definition") if manifest else None
    return definition if isinstance(definition, dict) else None


def rendered_board(firmware_dir: str | Path) -> str | None:
    """The board a firmware folder was rendered for, or None if it was not rendered here.

    Read from `rendered.json`, or from `board.txt` for folders rendered by older versions.
    """
    manifest = read_manifest(firmware_dir)
    if manifest is not None:
        return manifest["board"]
    marker = Path(firmware_dir) / BOARD_MARKER
    return marker.read_text(encoding="utf-8").strip() if marker.is_file() else None
