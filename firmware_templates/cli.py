"""`lenet-edge build` and `lenet-edge flash`."""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from lenet_edge.errors import LenetEdgeError
from lenet_edge.firmware_templates.boards import BOARDS, DEFAULT_BOARD, get_board
from lenet_edge.firmware_templates.build import BuildResult, build_firmware
from lenet_edge.firmware_templates.render import firmware_dir_of, target_name

BOARD_OPTION = click.option(
    "--board", default=DEFAULT_BOARD, show_default=True, type=click.Choice(list(BOARDS)),
    help="Target board (qemu-* run in the emulator).",
)
EXPORT_OPTION = click.option(
    "--export", "export_dir", default="out", show_default=True, type=click.Path(path_type=Path),
    help="Directory written by `lenet-edge export --target cortex-m --out DIR`.",
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


def _files(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


def print_sync(console: Console, result: BuildResult, rerender: bool = False) -> None:
    """What the build changed in an existing firmware project, and the edits it kept."""
    updated = result.updated_files
    if result.backup_dir is not None:
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


@click.command()
@BOARD_OPTION
@EXPORT_OPTION
@FIRMWARE_OPTION
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None,
              help="Write the size report here [default: <firmware>/build/<target>.json].")
@click.option("--rerender", is_flag=True,
              help="Render the project again from lenet-edge's templates, discarding edits to "
                   "rendered files.")
def build(board, export_dir, firmware_dir, json_path, rerender):
    """Compile the generated firmware with arm-none-eabi-gcc (-Wall -Wextra -Werror).

    Writes .elf/.bin/.hex, prints flash and RAM use per section and the worst-case stack,
    and writes them to JSON.

    Renders the firmware project (EXPORT/firmware) when it is missing or was rendered for
    another board. An existing one is first brought up to date with this lenet-edge's
    templates, keeping the files you edited (--rerender discards those edits).
    """
    console = Console()
    with console.status(f"building firmware for {board} ..."):
        result = build_firmware(board, export_dir, firmware_dir, json_path=json_path,
                                rerender=rerender)
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
@EXPORT_OPTION
@FIRMWARE_OPTION
@click.option("--image", type=click.Path(path_type=Path), default=None,
              help="Firmware image (.elf; .hex also for real boards) [default: the built one, built if missing].")
@click.option("--tool", type=click.Choice(["auto", "pyocd", "openocd"]), default="auto", show_default=True,
              help="Flasher for real boards.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None,
              help="QEMU only: stop after this many seconds (default: run until Ctrl-C).")
def flash(board, export_dir, firmware_dir, image, tool, duration):
    """Flash a real board (pyOCD/OpenOCD), or start QEMU for a qemu-* board.

    For QEMU the UART is served on a local TCP port; connect with the printed pyserial
    URL (e.g. `lenet-edge validate --port socket://127.0.0.1:PORT`). Ctrl-C stops it.
    """
    console = Console()
    b = get_board(board)
    if image is None:
        fw = firmware_dir_of(export_dir, firmware_dir)
        image = fw / "build" / f"{target_name(b)}.elf"
        if not image.is_file():
            with console.status(f"building firmware for {b.name} ..."):
                result = build_firmware(b, export_dir, firmware_dir)
            print_sync(Console(stderr=True), result)  # stdout stays the QEMU lines scripts read
            image = result.elf
    check_image(image, b.is_qemu)
    if not b.is_qemu:
        from lenet_edge.firmware_templates.flash import flash_board

        with console.status(f"flashing {b.name} ..."):
            flash_board(b, image, tool)
        console.print(f"flashed {image} to {b.name}")
        return 0

    from lenet_edge.firmware_templates.qemu import start_qemu

    with start_qemu(b, image) as q:
        # Plain prints, flushed: scripts and tests read these lines.
        click.echo(f"QEMU {b.qemu_machine} running {image} (pid {q.pid})")
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
