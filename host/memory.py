"""Flash, RAM and stack of the firmware being validated, for the report.

The build's own measurement (`firmware/build/<target>.json`, written by `lenet-edge
build`) is used when the validated model directory holds one for the device's board;
the stack high-water mark measured on the device (INFO `stack_used`, stack painting,
read after the run) is always added. Without a build report (a board flashed from
elsewhere) only what the device reports is shown.
"""

from __future__ import annotations

import json
from pathlib import Path


def build_report_path(model_dir: str | Path | None, board: str | None) -> Path | None:
    if model_dir is None or not board:
        return None
    base = Path(model_dir)
    if base.is_file():  # a .tflite: its export directory is model/..
        base = base.parent.parent
    from lenet_edge.errors import LenetEdgeError
    from lenet_edge.firmware_templates.boards import get_board
    from lenet_edge.firmware_templates.render import firmware_dir_of, target_name

    try:
        target = target_name(get_board(board))
    except LenetEdgeError:  # a board this lenet-edge does not know
        return None
    path = firmware_dir_of(base) / "build" / f"{target}.json"
    return path if path.is_file() else None


def memory_figures(model_dir: str | Path | None, info: dict, stack_measured: int | None) -> dict:
    """{flash_bytes, ram_bytes, sections, capacities, stack_worst_case_bytes,
    stack_measured_bytes, arena_bytes, source} (None where unknown)."""
    out = {"source": None, "flash_bytes": None, "flash_capacity": None, "ram_bytes": None,
           "ram_capacity": None, "sections": None, "stack_worst_case_bytes": None,
           "stack_measured_bytes": stack_measured, "arena_bytes": info.get("arena_bytes")}
    path = build_report_path(model_dir, info.get("board"))
    if path is None:
        return out
    try:
        build = json.loads(path.read_text())
    except (OSError, ValueError):
        return out
    out.update(source=str(path), flash_bytes=build.get("flash_bytes"),
               flash_capacity=build.get("flash_capacity"), ram_bytes=build.get("ram_bytes"),
               ram_capacity=build.get("ram_capacity"), sections=build.get("sections"),
               stack_worst_case_bytes=(build.get("stack") or {}).get("worst_case_bytes"))
    return out
