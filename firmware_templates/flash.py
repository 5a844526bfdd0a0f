"""Flash a real board through pyOCD, OpenOCD or its DAPLink USB drive (the emulated
boards run in qemu.py).

Each tool is driven through its own command line, so lenet-edge works with whatever
version the user installed. Errors say which tool is missing and how to get it, or that
no debug probe answered. Nothing waits for a probe to be plugged in: pyOCD runs with
`--no-wait` (without it, `pyocd load` waits forever for a probe).

A DAPLink probe (the BBC micro:bit's) also mounts a USB drive: copying the .hex onto it
programs the chip.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from lenet_edge.errors import LenetEdgeError
from lenet_edge.firmware_templates.boards import Board, get_board

TOOLS = ("pyocd", "openocd")
DRIVE_ROOTS = ("/media", "/run/media", "/mnt", "/Volumes")  # where desktops mount USB drives
INSTALL_HINT = (
    "install a flasher: `pip install 'lenet-edge[flash]'` (pyOCD) or "
    "`sudo apt-get install --no-install-recommends openocd`"
)
FLASH_TIMEOUT_S = 180  # programming 512 KB over SWD takes well under a minute
# What the tools print when no probe is connected (or it cannot be opened).
_NO_PROBE = re.compile(
    r"no (available )?debug probes?|no connected debug probe|open failed|unable to find|"
    r"no device found|not found.*(st-?link|probe)|couldn't find|LIBUSB_ERROR",
    re.IGNORECASE,
)
NO_TARGET = re.compile(r"no target device available|no connected debug probes", re.IGNORECASE)


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


def flash_command(board: Board, tool: str, prefix: list[str], image: Path,
                  probe_uid: str | None = None) -> list[str]:
    if tool == "pyocd":
        if not board.pyocd_target:
            raise LenetEdgeError(f"board '{board.name}' has no pyOCD target in the board table "
                                 "(use --tool openocd)")
        probe = ["--uid", probe_uid] if probe_uid else []
        return prefix + ["load", "--no-wait", *probe, "--target", board.pyocd_target, str(image)]
    if not board.openocd_args:
        raise LenetEdgeError(f"board '{board.name}' has no OpenOCD configuration in the board table")
    probe = ["-c", f"adapter serial {probe_uid}"] if probe_uid else []
    return (prefix + list(board.openocd_args) + probe
            + ["-c", f"program {image.as_posix()} verify reset exit"])


def find_drive(board: Board, roots=DRIVE_ROOTS) -> Path | None:
    """The mounted USB drive of the board's DAPLink probe (a folder named by its label,
    holding DAPLink's DETAILS.TXT), searched up to two levels below the usual mount
    roots; None when none is mounted."""
    if not board.drive_label:
        return None
    for root in map(Path, roots):
        for pattern in (board.drive_label, f"*/{board.drive_label}"):
            for candidate in sorted(root.glob(pattern)) if root.is_dir() else ():
                if (candidate / "DETAILS.TXT").is_file():
                    return candidate
    return None


def copy_to_drive(board: Board, image: Path, drive: Path) -> str:
    """Program the board by copying its .hex onto the probe's drive (DAPLink flashes it,
    then remounts the drive)."""
    hex_image = image.with_suffix(".hex")
    if not hex_image.is_file():
        raise LenetEdgeError(f"no .hex beside {image}: the {board.drive_label} drive takes Intel hex files")
    if not drive.is_dir():
        raise LenetEdgeError(f"{drive} is not a mounted drive folder")
    target = drive / hex_image.name
    try:
        with open(hex_image, "rb") as src, open(target, "wb") as dst:
            dst.write(src.read())
            dst.flush()
            os.fsync(dst.fileno())
    except OSError as exc:
        raise LenetEdgeError(f"could not copy {hex_image.name} to {drive}: {exc}") from None
    return f"copied to {drive}"


def _drive_hint(board: Board) -> str:
    if not board.drive_label:
        return ""
    return (f"; or plug in the {board.name} over USB, wait for its {board.drive_label} drive "
            f"to mount and run again (or copy the .hex onto it yourself, or give --drive PATH)")


def flash_board(board: str | Board, image: str | Path, tool: str = "auto",
                probe_uid: str | None = None, drive: str | Path | None = None) -> str:
    """Write `image` (.elf or .hex) to a connected real board; returns how it was done."""
    board = get_board(board)
    if board.is_qemu:
        raise LenetEdgeError(f"'{board.name}' is emulated; `lenet-edge flash --board {board.name}` starts QEMU instead")
    image = Path(image)
    if not image.is_file():
        raise LenetEdgeError(f"no firmware image at {image}; run `lenet-edge build --board {board.name}` first")
    if tool == "drive" or drive is not None:
        found = Path(drive) if drive is not None else find_drive(board)
        if found is None:
            raise LenetEdgeError(f"no {board.drive_label or 'DAPLink'} drive is mounted"
                                 + (_drive_hint(board) if board.drive_label else
                                    f"; {board.name} has no USB drive: use --tool pyocd or openocd"))
        return copy_to_drive(board, image, found)
    if tool == "auto" and probe_uid is None:
        found = find_drive(board)
        if found is not None:
            return copy_to_drive(board, image, found)
    try:
        name, prefix = find_tool(tool)
    except LenetEdgeError as exc:
        raise LenetEdgeError(f"{exc}{_drive_hint(board)}") from None
    cmd = flash_command(board, name, prefix, image, probe_uid)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=FLASH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise LenetEdgeError(f"{name} did not finish flashing within {FLASH_TIMEOUT_S} s") from None
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        if _NO_PROBE.search(output) or NO_TARGET.search(output):
            which = f"probe {probe_uid}" if probe_uid else "debug probe"
            raise LenetEdgeError(
                f"no {which} found by {name}: connect the {board.name} over USB "
                f"and check its udev permissions{_drive_hint(board)}. {name} said:\n{_tail(output)}"
            )
        raise LenetEdgeError(f"{name} failed to flash {board.name}:\n{_tail(output)}")
    return f"{name}"


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.splitlines()[-lines:])
