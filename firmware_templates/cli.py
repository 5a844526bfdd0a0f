"""`lenet-edge build` and `lenet-edge flash`."""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from lenet_edge.errors import LenetEdgeError
from lenet_edge.flows import check_board_name, ensure_export
from lenet_edge.firmware_templates.board_file import resolve_board  # noqa: F401 (moved there)
from lenet_edge.firmware_templates.boards import BOARDS, DEFAULT_BOARD, Board
from lenet_edge.firmware_templates.build import BuildResult, build_firmware, print_sync
from lenet_edge.firmware_templates.render import firmware_dir_of, rendered_board, target_name
from lenet_edge.layout import DEFAULT_EXPORT_DIR

BOARD_OPTION = click.option(
    "--board", default=None, metavar="BOARD", callback=check_board_name,
    help="Target board (`lenet-edge boards` lists them; qemu-* run in the emulator) "
         f"[default: the board the firmware folder was rendered for, else {DEFAULT_BOARD}].",
)
BOARD_FILE_OPTION = click.option(
    "--board-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="A board outside the package, described in TOML (README: 'A board of your own').",
)
EMULATE_OPTION = click.option(
    "--emulate", is_flag=True,
    help="Run a real board's own image on QEMU's model of its chip (boards with a QEMU "
         "machine in `lenet-edge boards`).",
)
EXPORT_OPTION = click.option(
    "--export", "export_dir", default=DEFAULT_EXPORT_DIR, show_default=True,
    type=click.Path(path_type=Path),
    help="Export folder (`lenet-edge export --out DIR`; the bundled model is exported there "
         "first when it holds none).",
)
FIRMWARE_OPTION = click.option(
    "--firmware-dir", type=click.Path(path_type=Path), default=None,
    help="Firmware project folder [default: EXPORT/firmware].",
)


def _kib(n: int) -> str:
    return f"{n / 1024:.1f} KiB"


def size_table(result: BuildResult) -> Table:
    s = result.sections
    table = Table(title=f"{result.board}: flash and RAM by section")
    table.add_column("section")
    table.add_column("memory")
    table.add_column("bytes", justify="right")
    table.add_column("", justify="right")
    rows = [
        ("text (code, vectors)", "flash", s["text"]),
        ("rodata", "flash", s["rodata"]),
        ("weights (model constants)", "flash", s["weights"]),
        ("data (initial values)", "flash+RAM", s["data"]),
        ("stack (reserved)", "RAM", s["stack"]),
        ("arena (model activations)", "RAM", s["arena"]),
        ("bss", "RAM", s["bss"]),
    ]
    for name, memory, size in rows:
        table.add_row(name, memory, f"{size:,}", _kib(size))
    table.add_section()
    pct_f = 100 * result.flash_bytes / result.flash_capacity
    pct_r = 100 * result.ram_bytes / result.ram_capacity
    table.add_row("flash total", "", f"{result.flash_bytes:,}", f"{pct_f:.1f}% of {_kib(result.flash_capacity)}")
    table.add_row("RAM total", "", f"{result.ram_bytes:,}", f"{pct_r:.1f}% of {_kib(result.ram_capacity)}")
    st = result.stack
    table.add_row(
        "stack worst case (estimate)", "", f"{st['worst_case_bytes']:,}",
        f"of {st['reserved_bytes']:,} reserved",
    )
    return table


@click.command()
@BOARD_OPTION
@BOARD_FILE_OPTION
@EXPORT_OPTION
@FIRMWARE_OPTION
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None,
              help="Write the size report here [default: <firmware>/build/<target>.json].")
@click.option("--rerender", is_flag=True,
              help="Render the project again from lenet-edge's templates, discarding edits to "
                   "rendered files.")
@click.option("--baud", type=click.IntRange(min=1), default=None,
              help="Console UART baud rate (default: the folder's, else 115200). The divisor "
                   "is computed on the device from the clock actually running; a rate the "
                   "board's UART cannot make within 2 % is refused.")
def build(board, board_file, export_dir, firmware_dir, json_path, rerender, baud):
    """Compile the generated firmware with arm-none-eabi-gcc (-Wall -Wextra -Werror).

    Writes .elf/.bin/.hex, prints flash and RAM use per section and the worst-case stack,
    and writes them to JSON.

    Exports the bundled model into EXPORT first when it holds no export. Renders the
    firmware project (EXPORT/firmware) when it is missing or was rendered for another
    board. An existing one is first brought up to date with this lenet-edge's
    templates, keeping the files you edited (--rerender discards those edits).
    """
    console = Console()
    board = resolve_board(board, export_dir, firmware_dir, board_file)
    ensure_export(export_dir, console)
    with console.status(f"building firmware for {board.name} ..."):
        result = build_firmware(board, export_dir, firmware_dir, json_path=json_path,
                                rerender=rerender, baud=baud)
    print_sync(console, result, rerender)
    console.print(size_table(result))
    stack = result.stack
    console.print(f"deepest call path: {' -> '.join(stack['main_path'])}")
    if stack["worst_case_bytes"] > stack["reserved_bytes"]:
        console.print(f"[red]warning: the stack estimate exceeds the {stack['reserved_bytes']} bytes reserved[/red]")
    report = json_path or result.elf.with_suffix(".json")
    console.print(f"image: {result.elf}\n       {result.bin}\n       {result.hex}\nreport: {report}")
    return 0


def check_image(image: Path, qemu: bool) -> None:
    """Refuse what is not a firmware image before flashing or booting it: an ELF file
    (or, for real boards, Intel HEX)."""
    try:
        with open(image, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise LenetEdgeError(f"cannot read --image {image}: {exc.strerror or exc}") from None
    if head == b"\x7fELF" or (not qemu and head[:1] == b":"):
        return
    raise LenetEdgeError(f"--image {image} is not a firmware image (expected an ELF file"
                         + ("" if qemu else " or Intel HEX") + "); give the .elf that "
                         "`lenet-edge build` wrote")


@click.command()
@BOARD_OPTION
@BOARD_FILE_OPTION
@EXPORT_OPTION
@FIRMWARE_OPTION
@EMULATE_OPTION
@click.option("--image", type=click.Path(path_type=Path), default=None,
              help="Firmware image (.elf; .hex also for real boards) [default: the built one, built if missing].")
@click.option("--tool", type=click.Choice(["auto", "pyocd", "openocd", "drive"]), default="auto",
              show_default=True,
              help="How to program a real board: pyOCD, OpenOCD, or copying the .hex onto the "
                   "USB drive its DAPLink probe mounts (bbc-microbit). auto: the drive if one "
                   "is mounted, else pyOCD, else OpenOCD.")
@click.option("--probe", "probe_uid", metavar="UID", default=None,
              help="Debug probe to use (its unique ID / serial number) when several are attached.")
@click.option("--drive", "drive", type=click.Path(path_type=Path), default=None,
              help="The board's mounted USB drive (e.g. /media/$USER/MICROBIT) [default: found by its label].")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None,
              help="QEMU only: stop after this many seconds (default: run until Ctrl-C).")
def flash(board, board_file, export_dir, firmware_dir, emulate, image, tool, probe_uid, drive,
          duration):
    """Flash a real board (pyOCD, OpenOCD or its USB drive), or start QEMU.

    qemu-* boards, and real boards with --emulate, run in QEMU: the console UART is
    served on a local TCP port; connect with the printed pyserial URL (e.g.
    `lenet-edge validate --port socket://127.0.0.1:PORT`). Ctrl-C stops it. A real board
    with no probe attached is reported within seconds, never waited for.
    """
    console = Console()
    b = resolve_board(board, export_dir, firmware_dir, board_file)
    if image is None:
        fw = firmware_dir_of(export_dir, firmware_dir)
        image = fw / "build" / f"{target_name(b)}.elf"
        if not image.is_file() or rendered_board(fw) != b.name:
            ensure_export(export_dir, Console(stderr=True))
            with console.status(f"building firmware for {b.name} ..."):
                result = build_firmware(b, export_dir, firmware_dir)
            print_sync(Console(stderr=True), result)  # stdout stays the QEMU lines scripts read
            image = result.elf
    check_image(image, b.is_qemu or emulate)
    if not b.is_qemu and not emulate:
        from lenet_edge.firmware_templates.flash import flash_board

        with console.status(f"flashing {b.name} ..."):
            how = flash_board(b, image, tool, probe_uid=probe_uid, drive=drive)
        console.print(f"flashed {image} to {b.name} ({how})", markup=False, highlight=False)
        return 0

    from lenet_edge.firmware_templates.qemu import start_qemu

    with start_qemu(b, image, emulate=emulate) as q:
        # Plain prints, flushed: scripts and tests read these lines.
        click.echo(f"QEMU {b.emulator.machine} running {image} (pid {q.pid})")
        click.echo(f"serial: {q.url}")
        click.echo("the guest boots when a client connects; Ctrl-C stops QEMU", err=True)
        deadline = None if duration is None else time.monotonic() + duration
        try:
            while q.alive() and (deadline is None or time.monotonic() < deadline):
                time.sleep(0.2)
        except KeyboardInterrupt:
            click.echo("stopping QEMU", err=True)
        if not q.alive():
            click.echo(f"QEMU exited:\n{q.stderr_text.strip()}", err=True)
            return 1
    click.echo("QEMU stopped", err=True)
    return 0


BOARD_COLUMNS = ("board", "chip", "core", "clock", "flash / RAM", "console", "flasher",
                 "QEMU machine", "tests")


def _flasher(board: Board) -> str:
    if board.is_qemu:
        return "none (QEMU)"
    ways = (["USB drive (DAPLink)"] if board.drive_label else []) + (
        [f"pyOCD ({board.pyocd_target})"] if board.pyocd_target else []) + (
        ["OpenOCD"] if board.openocd_args else [])
    return ", ".join(ways)


def board_rows() -> list[dict[str, str]]:
    """One row per board of the table, for people (`lenet-edge boards`, the README)."""
    rows = []
    for b in BOARDS.values():
        emulator = b.emulator.machine if b.emulator else "none"
        if b.emulator and b.emulator.serial_index:
            emulator += f" (console: -serial {b.emulator.serial_index})"
        rows.append({
            "board": b.name,
            "chip": b.chip,
            "core": b.core.title,
            "clock": f"{b.clock_hz / 1e6:g} MHz",
            "flash / RAM": f"{b.flash.length // 1024:,} KB / {b.ram.length // 1024:,} KB",
            "console": b.console,
            "flasher": _flasher(b),
            "QEMU machine": emulator,
            "tests": b.tested,
        })
    return rows


def boards_markdown() -> str:
    rows = board_rows()
    lines = ["| " + " | ".join(BOARD_COLUMNS) + " |", "|" + " --- |" * len(BOARD_COLUMNS)]
    lines += ["| " + " | ".join(f"`{r[c]}`" if c == "board" else r[c] for c in BOARD_COLUMNS)
              + " |" for r in rows]
    return "\n".join(lines) + "\n"


@click.command("boards")
@click.option("--markdown", is_flag=True, help="Print the table as Markdown (the README's board list).")
@click.option("--json", "as_json", is_flag=True, help="Print the board table as JSON.")
def boards(markdown, as_json):
    """The boards lenet-edge generates firmware for: chip, core, clock, memory, console,
    flasher, and the QEMU machine that runs the same image (or none: compiled only)."""
    if as_json:
        import json

        click.echo(json.dumps(board_rows(), indent=2))
        return 0
    if markdown:
        click.echo(boards_markdown(), nl=False)
        return 0
    table = Table(title="boards")
    for col in BOARD_COLUMNS:
        table.add_column(col, no_wrap=col == "board", overflow="fold")
    for row in board_rows():
        table.add_row(*(row[c] for c in BOARD_COLUMNS))
    Console(width=max(Console().width, 180)).print(table)
    return 0
