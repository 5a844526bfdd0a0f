"""The board table: everything lenet-edge needs to know to generate, build and run firmware.

Adding a board = one entry here plus (for a new chip family) one folder of templates under
``firmware_templates/boards/<template>/`` providing ``board.c`` (clock, UART; see
``common/board_port.h``). Files in that folder override ``common/`` files of the same
name (e.g. its own ``timebase.c`` when the chip has no SysTick), so a board can replace
any part of the common project.

Two kinds of board:
- ``qemu-*``: images for QEMU's MPS2/MPS3 FPGA machines; they run only in the emulator.
- real boards: images for a chip a user can own. Where QEMU models that chip
  (``emulator``), the same, unmodified image also runs there (``--emulate``): the tests
  run it, so its clock, UART and counter code has executed before a user flashes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lenet_edge.cpus import Cpu, get_cpu
from lenet_edge.errors import LenetEdgeError


@dataclass(frozen=True)
class MemoryRegion:
    origin: int
    length: int


@dataclass(frozen=True)
class Emulator:
    """How QEMU runs a board's image: machine, CPU option, and which ``-serial`` is the
    console (``-serial`` i is the machine's (i+1)-th UART; the ones before get null)."""

    machine: str
    serial_index: int = 0
    cpu: str | None = None
    note: str = ""  # what differs from the silicon (for `lenet-edge boards` and docs)


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    chip: str
    template: str  # folder under firmware_templates/boards/
    cpu: str  # key of the CPU table (lenet_edge.cpus): -mcpu
    clock_hz: int  # core clock the firmware sets up (it reports what actually runs)
    flash: MemoryRegion  # where the image lives (on QEMU MPS: the RAM QEMU loads it into)
    ram: MemoryRegion
    num_irqs: int  # external interrupts in the vector table
    console: str  # how the console UART reaches the host, for people
    # The console UART: family (uart.py), base, irq, clock_hz (its kernel clock when the
    # board runs as designed; the firmware computes the divisor from the clock it finds),
    # and the driver's template parameters.
    uart: dict = field(default_factory=dict)
    timebase: str = "systick"  # or a board folder's own timebase.c ("timer0" on nRF51)
    timebase_irq: int | None = None  # its interrupt, when not SysTick
    uart_baud: int = 115200
    uart_rx_buffer: int = 2048
    emulation_only: bool = False  # the qemu-* FPGA images
    emulator: Emulator | None = None
    # Real boards: how to program them.
    pyocd_target: str | None = None
    openocd_args: tuple[str, ...] = ()
    drive_label: str | None = None  # a USB drive the board's probe mounts (DAPLink)
    # A board from a --board-file: the file's parsed table (kept in the firmware folder's
    # rendered.json so the folder remembers the board); None for the built-in boards.
    definition: dict | None = field(default=None, compare=False, repr=False)

    @property
    def core(self) -> Cpu:
        return get_cpu(self.cpu)

    @property
    def arch_flags(self) -> tuple[str, ...]:
        return self.core.float_flags

    @property
    def has_fpu(self) -> bool:
        return self.core.has_fpu

    @property
    def is_qemu(self) -> bool:
        """Runs only in QEMU (the MPS FPGA images)."""
        return self.emulation_only

    @property
    def can_emulate(self) -> bool:
        return self.emulator is not None

    @property
    def tested(self) -> str:
        """What the test suite does with this board's image."""
        if self.is_qemu:
            return "runs in QEMU"
        return "its image runs in QEMU (chip model)" if self.can_emulate else "compiled only"


def _cmsdk(base: int, rx_irq: int, pclk_hz: int = 25_000_000) -> dict:
    # CMSDK APB UART; QEMU clocks it at 25 MHz on the MPS2 machines and the AN547.
    return {"family": "cmsdk", "base": base, "irq": rx_irq, "pclk_hz": pclk_hz,
            "clock_hz": pclk_hz}


_MPS2_FLASH = MemoryRegion(0x00000000, 0x00400000)  # ZBT SSRAM1 (QEMU loads the ELF here)
_MPS2_RAM = MemoryRegion(0x20000000, 0x00400000)  # ZBT SSRAM2&3
_QEMU_CONSOLE = "UART0 on a local TCP port (QEMU)"


def _mps2(name: str, cpu: str) -> Board:
    """The QEMU MPS2 boards differ only in their core: 25 MHz, CMSDK UART0, SysTick."""
    title = get_cpu(cpu).title
    return Board(
        name=name,
        description=f"QEMU MPS2 {name.rsplit('-', 1)[1].upper()}, {title}, 25 MHz",
        chip="MPS2 FPGA image",
        template="qemu-mps",
        cpu=cpu,
        clock_hz=25_000_000,
        flash=_MPS2_FLASH,
        ram=_MPS2_RAM,
        num_irqs=32,
        console=_QEMU_CONSOLE,
        uart=_cmsdk(0x40004000, 0),
        emulation_only=True,
        emulator=Emulator(name.removeprefix("qemu-")),
    )


_ST_LINK_VCP = "USART2 PA2/PA3 -> ST-LINK virtual COM port (USB)"

BOARDS: dict[str, Board] = {
    b.name: b
    for b in (
        _mps2("qemu-mps2-an385", "cortex-m3"),
        _mps2("qemu-mps2-an386", "cortex-m4"),
        _mps2("qemu-mps2-an500", "cortex-m7"),
        Board(
            name="qemu-mps2-an505",
            description="QEMU MPS2 AN505 (IoTKit), Cortex-M33 with DSP and FPU, 20 MHz",
            chip="MPS2 FPGA image (IoTKit; runs Secure)",
            template="qemu-mps",
            cpu="cortex-m33",
            clock_hz=20_000_000,
            # The core boots Secure (SAU off): code in SSRAM1's Secure alias, data in
            # SSRAM2's, the UART at its Secure address.
            flash=MemoryRegion(0x10000000, 0x00400000),
            ram=MemoryRegion(0x38000000, 0x00200000),
            num_irqs=96,
            console=_QEMU_CONSOLE,
            uart=_cmsdk(0x50200000, 32, pclk_hz=20_000_000),
            emulation_only=True,
            emulator=Emulator("mps2-an505"),
        ),
        Board(
            name="qemu-mps3-an547",
            description="QEMU MPS3 AN547 (SSE-300), Cortex-M55 with FPU and MVE, 32 MHz",
            chip="MPS3 FPGA image (SSE-300)",
            template="qemu-mps",
            cpu="cortex-m55",
            clock_hz=32_000_000,
            # ITCM and DTCM (512 KiB each); the core boots Secure with the SAU off,
            # so everything, including the UART at its NS address, is Secure.
            flash=MemoryRegion(0x00000000, 0x00080000),
            ram=MemoryRegion(0x20000000, 0x00080000),
            num_irqs=96 + 32,  # SSE-300: external interrupts start at 32; UART0 RX is 33
            console=_QEMU_CONSOLE,
            uart=_cmsdk(0x49303000, 33),
            emulation_only=True,
            emulator=Emulator("mps3-an547", cpu="cortex-m55"),
        ),
        Board(
            name="nucleo-f446re",
            description="ST NUCLEO-F446RE, STM32F446RE Cortex-M4F at 168 MHz (HSI+PLL)",
            chip="STM32F446RE (512 KB flash, 128 KB RAM)",
            template="stm32f4",
            cpu="cortex-m4",
            clock_hz=168_000_000,
            flash=MemoryRegion(0x08000000, 512 * 1024),
            ram=MemoryRegion(0x20000000, 128 * 1024),
            num_irqs=97,
            console=_ST_LINK_VCP,
            uart={"family": "stm32_usart", "base": 0x40004400, "irq": 38,
                  "clock_hz": 42_000_000},  # APB1 at 168 MHz
            emulator=Emulator(
                "netduinoplus2", serial_index=1,
                note="STM32F405 model: same USART2; RCC/FLASH/GPIO read 0, so the clock "
                     "set-up times out and the image runs on the reset clock; no DWT"),
            pyocd_target="stm32f446retx",
            openocd_args=("-f", "interface/stlink.cfg", "-f", "target/stm32f4x.cfg"),
        ),
        Board(
            name="nucleo-g071rb",
            description="ST NUCLEO-G071RB, STM32G071RB Cortex-M0+ at 64 MHz (HSI16+PLL)",
            chip="STM32G071RB (128 KB flash, 36 KB RAM)",
            template="stm32g0",
            cpu="cortex-m0plus",
            clock_hz=64_000_000,
            flash=MemoryRegion(0x08000000, 128 * 1024),
            ram=MemoryRegion(0x20000000, 36 * 1024),
            num_irqs=32,
            console=_ST_LINK_VCP,
            uart_rx_buffer=1024,
            uart={"family": "stm32_usart", "base": 0x40004400, "irq": 28,
                  "clock_hz": 64_000_000},
            pyocd_target="stm32g071rbtx",
            openocd_args=("-f", "interface/stlink.cfg", "-f", "target/stm32g0x.cfg"),
        ),
        Board(
            name="bbc-microbit",
            description="BBC micro:bit v1, nRF51822 Cortex-M0 at 16 MHz",
            chip="nRF51822 (256 KB flash, 16 KB RAM; no SysTick)",
            template="nrf51",
            cpu="cortex-m0",
            clock_hz=16_000_000,
            flash=MemoryRegion(0x00000000, 256 * 1024),
            ram=MemoryRegion(0x20000000, 16 * 1024),
            num_irqs=32,
            console="UART0 P0.24 TX / P0.25 RX -> DAPLink USB serial",
            uart={"family": "nrf51", "base": 0x40002000, "irq": 2, "tx_pin": 24, "rx_pin": 25,
                  "clock_hz": 16_000_000},
            # nRF51 silicon has no SysTick (QEMU's model adds one): TIMER0 is the time base.
            timebase="timer0",
            timebase_irq=8,
            emulator=Emulator("microbit", note="nRF51 model; QEMU adds a SysTick the "
                                               "silicon lacks (unused)"),
            pyocd_target="nrf51",
            drive_label="MICROBIT",
        ),
        Board(
            name="stm32vldiscovery",
            description="ST STM32VLDISCOVERY, STM32F100RB Cortex-M3 at 24 MHz (HSI/2 x 6 PLL)",
            chip="STM32F100RB (128 KB flash, 8 KB RAM)",
            template="stm32f1",
            cpu="cortex-m3",
            clock_hz=24_000_000,
            flash=MemoryRegion(0x08000000, 128 * 1024),
            ram=MemoryRegion(0x20000000, 8 * 1024),
            num_irqs=61,
            # Its ST-LINK/V1 has no virtual COM port: the user wires the console.
            console="USART1 PA9 TX / PA10 RX -> a 3.3 V USB-serial adapter you wire "
                    "(the ST-LINK/V1 has no virtual COM port)",
            uart={"family": "stm32_usart", "base": 0x40013800, "irq": 37,
                  "clock_hz": 24_000_000},  # APB2
            # 8 KB of RAM: the whole validating firmware needs under 4 KB (the stack
            # reserve is the static call-graph bound plus a margin).
            emulator=Emulator(
                "stm32vldiscovery", note="STM32F100 model: RCC/GPIO read 0, so the clock "
                                         "set-up times out and the image runs on the reset "
                                         "clock"),
            # pyOCD does not drive the ST-LINK/V1: OpenOCD only.
            openocd_args=("-f", "board/stm32vldiscovery.cfg"),
        ),
    )
}

QEMU_BOARDS = [name for name, b in BOARDS.items() if b.is_qemu]
EMULATED_BOARDS = [name for name, b in BOARDS.items() if b.can_emulate]
DEFAULT_BOARD = "qemu-mps2-an386"


def get_board(name: str | Board) -> Board:
    """The table entry for `name` (a Board passes through); clear error for unknown names."""
    if isinstance(name, Board):
        return name
    try:
        return BOARDS[name]
    except KeyError:
        raise LenetEdgeError(
            f"unknown board '{name}'; known boards: {', '.join(BOARDS)} "
            "(`lenet-edge boards` lists them; describe another with --board-file)"
        ) from None


def emulated_board(name: str | Board, emulate: bool = False) -> Board:
    """The board to run in QEMU: a qemu-* board, or a real board with `emulate` whose chip
    QEMU models; a clear error otherwise."""
    board = get_board(name)
    if board.is_qemu:
        return board
    if not emulate:
        raise LenetEdgeError(
            f"{board.name} is a real board: flash it (`lenet-edge flash --board {board.name}`) "
            f"and give its --port"
            + (", or add --emulate to run its image in QEMU" if board.can_emulate else "")
        )
    if not board.can_emulate:
        raise LenetEdgeError(
            f"QEMU has no model of {board.name}'s chip ({board.chip}): it is compiled only; "
            f"boards that run emulated: {', '.join(EMULATED_BOARDS)}"
        )
    return board
