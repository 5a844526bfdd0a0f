"""A board outside the package: `--board-file my_board.toml` describes a board whose chip
family lenet-edge already drives (a template folder: its clock code and UART driver),
with its own core, memory map, clock, console UART and flasher. Adding such a board needs
no edit of the installed package.

    name = "my-board"                 # letters, digits, '-'; not a built-in board's name
    chip = "STM32F401RE"
    template = "stm32f4"              # see TEMPLATES
    cpu = "cortex-m4"                 # a key of the CPU table (lenet-edge boards: core)
    clock_hz = 84_000_000
    num_irqs = 85
    [flash]
    origin = 0x08000000
    length = 0x80000
    [ram]
    origin = 0x20000000
    length = 0x18000
    [uart]                            # the console
    base = 0x40004400
    irq = 38
    clock_hz = 42_000_000             # its kernel clock when the board runs as designed
    # optional: description, console, uart_rx_buffer, uart_baud,
    # emulation_only, [emulator] machine/serial_index/cpu, [flasher] pyocd_target,
    # openocd_args, drive_label; [uart] tx_pin/rx_pin (nrf51)

Every key is checked (type, range, unknown keys) with one clear error naming it.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from lenet_edge.cpus import CPU_TABLE
from lenet_edge.errors import LenetEdgeError
from lenet_edge.firmware_templates.boards import BOARDS, Board, Emulator, MemoryRegion

# Template folder -> what it drives: its UART family (uart.py) and time base.
TEMPLATES: dict[str, dict] = {
    "qemu-mps": {"uart_family": "cmsdk", "timebase": "systick", "what": "Arm MPS2/MPS3 FPGA image, CMSDK UART"},
    "stm32f4": {"uart_family": "stm32_usart", "timebase": "systick",
                "what": "STM32F4: HSI+PLL to 168 MHz, USART on PA2/PA3 (AF7)"},
    "stm32f1": {"uart_family": "stm32_usart", "timebase": "systick",
                "what": "STM32F1 value line: HSI/2 x6 PLL, USART1 on PA9/PA10"},
    "stm32g0": {"uart_family": "stm32_usart", "timebase": "systick",
                "what": "STM32G0: HSI16+PLL to 64 MHz, USART2 on PA2/PA3 (AF1)"},
    "nrf51": {"uart_family": "nrf51", "timebase": "timer0", "timebase_irq": 8,
              "what": "nRF51: 16 MHz, UART0 on configurable pins, TIMER0 time base"},
}
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,40}")
_TOP = {"name", "description", "chip", "template", "cpu", "clock_hz", "num_irqs", "console",
        "uart_rx_buffer", "uart_baud", "emulation_only", "flash", "ram", "uart",
        "emulator", "flasher"}


class _Reader:
    """Typed access to one table of the file, naming the key in every error."""

    def __init__(self, source: str, table: dict, where: str = ""):
        self.source, self.table, self.where = source, table, where

    def _name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def fail(self, key: str, message: str):
        raise LenetEdgeError(f"{self.source}: {self._name(key)} {message}")

    def get(self, key: str, kind, required: bool = True, default=None):
        if key not in self.table:
            if required:
                self.fail(key, "is missing")
            return default
        value = self.table[key]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            self.fail(key, f"must be {_KIND_NAMES.get(kind, kind)} (got {value!r})")
        return value

    def positive(self, key: str, required: bool = True, default=None, maximum: int = 2**32 - 1):
        value = self.get(key, int, required, default)
        if value is not None and not 0 < value <= maximum:
            self.fail(key, f"must be between 1 and {maximum} (got {value})")
        return value

    def address(self, key: str) -> int:
        value = self.get(key, int)
        if not 0 <= value <= 0xFFFFFFFF:
            self.fail(key, f"must be a 32-bit address (got {value:#x})")
        return value

    def sub(self, key: str, required: bool = True, allowed: set[str] | None = None) -> _Reader | None:
        table = self.get(key, dict, required)
        if table is None:
            return None
        reader = _Reader(self.source, table, self._name(key))
        if allowed is not None:
            reader.only(allowed)
        return reader

    def only(self, allowed: set[str]) -> None:
        unknown = sorted(set(self.table) - allowed)
        if unknown:
            self.fail(unknown[0], f"is not a board-file key (known here: {', '.join(sorted(allowed))})")


_KIND_NAMES = {int: "a whole number", str: "text", bool: "true or false", dict: "a table",
               list: "a list"}


def _region(reader: _Reader, key: str) -> MemoryRegion:
    r = reader.sub(key, allowed={"origin", "length"})
    origin, length = r.address("origin"), r.positive("length")
    if origin + length > 2**32:
        r.fail("length", f"runs past the 4 GB address space ({origin:#x} + {length:#x})")
    return MemoryRegion(origin, length)


def board_from_definition(table: dict, source: str = "board file") -> Board:
    """A Board from a parsed board file (see the module docstring); clear errors."""
    top = _Reader(source, table)
    top.only(_TOP)
    name = top.get("name", str)
    if not _NAME.fullmatch(name):
        top.fail("name", f"must be lower-case letters, digits and '-' (got {name!r})")
    if name in BOARDS:
        top.fail("name", f"'{name}' is a built-in board; give yours another name")
    template = top.get("template", str)
    if template not in TEMPLATES:
        top.fail("template", f"'{template}' is not a template lenet-edge has; choose one of: "
                 + "; ".join(f"{k} ({v['what']})" for k, v in TEMPLATES.items()))
    family = TEMPLATES[template]
    cpu = top.get("cpu", str)
    if cpu not in CPU_TABLE:
        top.fail("cpu", f"'{cpu}' is not in the CPU table; choose one of: {', '.join(CPU_TABLE)}")
    clock_hz = top.positive("clock_hz")
    num_irqs = top.positive("num_irqs", maximum=480)
    flash, ram = _region(top, "flash"), _region(top, "ram")

    uart_keys = {"base", "irq", "clock_hz"} | ({"tx_pin", "rx_pin"} if template == "nrf51" else set())
    u = top.sub("uart", allowed=uart_keys)
    uart = {"family": family["uart_family"], "base": u.address("base"), "irq": u.get("irq", int),
            "clock_hz": u.positive("clock_hz")}
    if not 0 <= uart["irq"] < num_irqs:
        u.fail("irq", f"must be an external interrupt below num_irqs = {num_irqs} (got {uart['irq']})")
    if template == "qemu-mps":
        uart["pclk_hz"] = uart["clock_hz"]
    if template == "nrf51":
        for pin in ("tx_pin", "rx_pin"):
            uart[pin] = u.get(pin, int)
            if not 0 <= uart[pin] < 32:
                u.fail(pin, f"must be a GPIO pin 0..31 (got {uart[pin]})")

    rx_buffer = top.positive("uart_rx_buffer", required=False, default=2048, maximum=1 << 16)
    if rx_buffer & (rx_buffer - 1):
        top.fail("uart_rx_buffer", f"must be a power of two (got {rx_buffer})")
    if ram.length < 4096:
        # The validating firmware needs up to 4 KB (its stack is the static call-graph
        # bound plus a margin; the build reports what is left).
        top.fail("ram", f"length {ram.length} is less than the 4 KB the validating firmware needs")

    emulator = None
    e = top.sub("emulator", required=False, allowed={"machine", "serial_index", "cpu"})
    if e is not None:
        serial_index = e.get("serial_index", int, required=False, default=0)
        if not 0 <= serial_index < 8:
            e.fail("serial_index", f"must be 0..7 (got {serial_index})")
        emulator = Emulator(e.get("machine", str), serial_index, e.get("cpu", str, required=False))
    f = top.sub("flasher", required=False, allowed={"pyocd_target", "openocd_args", "drive_label"})
    flasher = {"pyocd_target": None, "openocd_args": (), "drive_label": None}
    if f is not None:
        flasher["pyocd_target"] = f.get("pyocd_target", str, required=False)
        flasher["drive_label"] = f.get("drive_label", str, required=False)
        args = f.get("openocd_args", list, required=False, default=[])
        if not all(isinstance(a, str) for a in args):
            f.fail("openocd_args", "must be a list of text arguments")
        flasher["openocd_args"] = tuple(args)
    emulation_only = top.get("emulation_only", bool, required=False, default=False)
    if emulation_only and emulator is None:
        top.fail("emulation_only", "needs an [emulator] table (the QEMU machine that runs it)")

    return Board(
        name=name,
        description=top.get("description", str, required=False, default=f"{name} (board file)"),
        chip=top.get("chip", str),
        template=template,
        cpu=cpu,
        clock_hz=clock_hz,
        flash=flash,
        ram=ram,
        num_irqs=num_irqs,
        console=top.get("console", str, required=False, default=f"UART at {uart['base']:#010x}"),
        uart=uart,
        timebase=family["timebase"],
        timebase_irq=family.get("timebase_irq"),
        uart_baud=top.positive("uart_baud", required=False, default=115200),
        uart_rx_buffer=rx_buffer,
        emulation_only=emulation_only,
        emulator=emulator,
        definition=dict(table),
        **flasher,
    )


def load_board_file(path: str | Path) -> Board:
    """The Board a TOML board file describes; one clear error for any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LenetEdgeError(f"cannot read board file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise LenetEdgeError(f"board file {path} is not UTF-8 text") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LenetEdgeError(f"board file {path} is not valid TOML: {exc}") from None
    return board_from_definition(table, str(path))


def resolve_board(board: str | None, export_dir: Path | None = None,
                  firmware_dir: Path | None = None, board_file: Path | None = None) -> Board:
    """--board, or --board-file, else the board the firmware folder was rendered for (a
    folder remembers its board, from a board file too), else the default."""
    from lenet_edge.firmware_templates.boards import DEFAULT_BOARD, get_board
    from lenet_edge.firmware_templates.render import (firmware_dir_of, rendered_board,
                                                      rendered_board_definition)

    if board is not None and board_file is not None:
        raise LenetEdgeError("give --board or --board-file, not both")
    if board_file is not None:
        return load_board_file(board_file)
    if board is None and export_dir is not None:
        fw = firmware_dir_of(export_dir, firmware_dir)
        definition = rendered_board_definition(fw)
        if definition is not None:
            return board_from_definition(definition, f"{fw / 'rendered.json'} (board_definition)")
        board = rendered_board(fw)
        if board not in BOARDS:
            board = None
    return get_board(board or DEFAULT_BOARD)
