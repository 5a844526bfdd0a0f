"""Flash a real board through pyOCD or OpenOCD (the emulated boards run in qemu.py).

Each tool is driven through its own command line, so lenet-edge works with whatever
version the user installed. Errors say which tool is missing and how to get it, or that
no debug probe answered.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from lenet_edge.errors import LenetEdgeError
from lenet_edge.firmware_templates.boards import Board, get_board

TOOLS = ("pyocd", "openocd")
INSTALL_HINT = (
    "install a flasher: `pip install 'lenet-edge[flash]'` (pyOCD) or "
    "`sudo apt-get install --no-install-recommends openocd`"
)
FLASH_TIMEOUT_S = 180
# What the tools print when no probe is connected (or it cannot be opened).
_NO_PROBE = re.compile(
    r"no (available )?debug probes?|no connected debug probe|open failed|unable to find|"
    r"no device found|not found.*(st-?link|probe)|couldn't find|LIBUSB_ERROR",
    re.IGNORECASE,
)


def _pyocd_command() -> list[str] | None:
    exe = shutil.which("pyocd")
    if exe:
        return [exe]
    # Installed into this interpreter (lenet-edge[flash]) but not on PATH.
    probe = subprocess.run([sys.executable, "-c", "import pyocd"], capture_output=True)
    return [sys.executable, "-m", "pyocd"] if probe.returncode == 0 else None


def find_tool(preferred: str = "auto") -> tuple[str, list[str]]:
    """(tool name, command prefix) of an installed flasher; clear error when none is."""
    if preferred not in ("auto",) + TOOLS:
        raise LenetEdgeError(f"unknown flash tool '{preferred}'; use one of: auto, {', '.join(TOOLS)}")
    candidates = TOOLS if preferred == "auto" else (preferred,)
    for tool in candidates:
        cmd = _pyocd_command() if tool == "pyocd" else ([shutil.which("openocd")] if shutil.which("openocd") else None)
        if cmd:
            return tool, cmd
    wanted = "pyOCD or OpenOCD" if preferred == "auto" else preferred
    raise LenetEdgeError(f"no flash tool found ({wanted} is not installed); {INSTALL_HINT}")


def flash_command(board: Board, tool: str, prefix: list[str], image: Path) -> list[str]:
    if tool == "pyocd":
        if not board.pyocd_target:
            raise LenetEdgeError(f"board '{board.name}' has no pyOCD target in the board table")
        return prefix + ["load", "--target", board.pyocd_target, str(image)]
    if not board.openocd_args:
        raise LenetEdgeError(f"board '{board.name}' has no OpenOCD configuration in the board table")
    return prefix + list(board.openocd_args) + ["-c", f"program {image.as_posix()} verify reset exit"]


def flash_board(board: str | Board, image: str | Path, tool: str = "auto") -> str:
    """Write `image` (.elf or .hex) to a connected real board; returns the tool's output."""
    board = get_board(board)
    if board.is_qemu:
        raise LenetEdgeError(f"'{board.name}' is emulated; `lenet-edge flash --board {board.name}` starts QEMU instead")
    image = Path(image)
    if not image.is_file():
        raise LenetEdgeError(f"no firmware image at {image}; run `lenet-edge build --board {board.name}` first")
    name, prefix = find_tool(tool)
    cmd = flash_command(board, name, prefix, image)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=FLASH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise LenetEdgeError(f"{name} did not finish flashing within {FLASH_TIMEOUT_S} s") from None
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        if _NO_PROBE.search(output):
            raise LenetEdgeError(
                f"no debug probe found by {name}: connect the {board.name} over USB (ST-LINK) "
                f"and check its udev permissions. {name} said:\n{_tail(output)}"
            )
        raise LenetEdgeError(f"{name} failed to flash {board.name}:\n{_tail(output)}")
    return output


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.splitlines()[-lines:])
