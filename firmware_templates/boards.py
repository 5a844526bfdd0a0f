"""The board table: everything lenet-edge needs to know to generate, build and run firmware.

Adding a board = one entry here plus (for a new chip family) one folder of templates under
``firmware_templates/boards/<template>/`` providing ``board.c`` (clock, UART, counter).
Files in that folder override ``common/`` files of the same name (e.g. its own
``startup.c.j2``), so a board can replace any part of the common project.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lenet_edge.errors import LenetEdgeError


@dataclass(frozen=True)
class MemoryRegion:
    origin: int
    length: int


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    template: str  # folder under firmware_templates/boards/
    cpu: str  # -mcpu
    arch_flags: tuple[str, ...]  # float ABI / FPU flags for gcc
    has_fpu: bool
    has_dwt_cyccnt: bool  # QEMU 7.2 does not emulate DWT: its boards use SysTick
    clock_hz: int  # core clock after board_init()
    flash: MemoryRegion  # where the image lives (on QEMU: the RAM QEMU loads it into)
    ram: MemoryRegion
    num_irqs: int  # external interrupts in the vector table
    uart: dict = field(default_factory=dict)  # template parameters of the UART driver
    uart_baud: int = 115200
    uart_rx_buffer: int = 2048
    # QEMU: machine and CPU; None for real boards.
    qemu_machine: str | None = None
    qemu_cpu: str | None = None
    # Real boards: flasher targets.
    pyocd_target: str | None = None
    openocd_args: tuple[str, ...] = ()

    @property
    def is_qemu(self) -> bool:
        return self.qemu_machine is not None

    @property
    def counter_unit(self) -> str:
        # Under -icount shift=0 one guest instruction is one virtual nanosecond, so a
        # SysTick on the core clock counts guest instructions in steps of 1e9/clock_hz.
        return "guest_instructions" if self.is_qemu else "cycles"

    @property
    def counter_hz(self) -> int:
        return 1_000_000_000 if self.is_qemu else self.clock_hz

    @property
    def counter_resolution(self) -> float:
        return 1e9 / self.clock_hz if self.is_qemu else 1.0


def _cmsdk(base: int, rx_irq: int) -> dict:
    # CMSDK APB UART; QEMU clocks it at 25 MHz on all four machines (AN547: APB 25 MHz).
    return {"base": base, "irq": rx_irq, "pclk_hz": 25_000_000}


_MPS2_FLASH = MemoryRegion(0x00000000, 0x00400000)  # ZBT SSRAM1 (QEMU loads the ELF here)
_MPS2_RAM = MemoryRegion(0x20000000, 0x00400000)  # ZBT SSRAM2&3


def _mps2(name: str, core: str, cpu: str, arch_flags: tuple[str, ...]) -> Board:
    """The QEMU MPS2 boards differ only in their core: 25 MHz, CMSDK UART0, SysTick."""
    return Board(
        name=name,
        description=f"QEMU MPS2 {name.rsplit('-', 1)[1].upper()}, {core}, 25 MHz",
        template="qemu-mps",
        cpu=cpu,
        arch_flags=arch_flags,
        has_fpu="-mfloat-abi=hard" in arch_flags,
        has_dwt_cyccnt=False,
        clock_hz=25_000_000,
        flash=_MPS2_FLASH,
        ram=_MPS2_RAM,
        num_irqs=32,
        uart=_cmsdk(0x40004000, 0),
        qemu_machine=name.removeprefix("qemu-"),
    )


BOARDS: dict[str, Board] = {
    b.name: b
    for b in (
        _mps2("qemu-mps2-an385", "Cortex-M3", "cortex-m3", ("-mfloat-abi=soft",)),
        _mps2("qemu-mps2-an386", "Cortex-M4F", "cortex-m4",
              ("-mfpu=fpv4-sp-d16", "-mfloat-abi=hard")),
        _mps2("qemu-mps2-an500", "Cortex-M7 (double-precision FPU)", "cortex-m7",
              ("-mfpu=fpv5-d16", "-mfloat-abi=hard")),
        Board(
            name="qemu-mps3-an547",
            description="QEMU MPS3 AN547 (SSE-300), Cortex-M55 with FPU and MVE, 32 MHz",
            template="qemu-mps",
            cpu="cortex-m55",
            arch_flags=("-mfloat-abi=hard",),
            has_fpu=True,
            has_dwt_cyccnt=False,
            clock_hz=32_000_000,
            # ITCM and DTCM (512 KiB each); the core boots Secure with the SAU off,
            # so everything, including the UART at its NS address, is Secure.
            flash=MemoryRegion(0x00000000, 0x00080000),
            ram=MemoryRegion(0x20000000, 0x00080000),
            num_irqs=96 + 32,  # SSE-300: external interrupts start at 32; UART0 RX is 33
            uart=_cmsdk(0x49303000, 33),
            qemu_machine="mps3-an547",
            qemu_cpu="cortex-m55",
        ),
        Board(
            name="nucleo-f446re",
            description="ST NUCLEO-F446RE, STM32F446RE Cortex-M4F at 168 MHz (HSI+PLL); "
            "USART2 PA2/PA3 on the ST-LINK virtual COM port",
            template="stm32f4",
            cpu="cortex-m4",
            arch_flags=("-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"),
            has_fpu=True,
            has_dwt_cyccnt=True,
            clock_hz=168_000_000,
            flash=MemoryRegion(0x08000000, 512 * 1024),
            ram=MemoryRegion(0x20000000, 128 * 1024),
            num_irqs=97,
            uart={"base": 0x40004400, "irq": 38, "pclk_hz": 42_000_000},
            pyocd_target="stm32f446retx",
            openocd_args=("-f", "interface/stlink.cfg", "-f", "target/stm32f4x.cfg"),
        ),
        Board(
            name="nucleo-g071rb",
            description="ST NUCLEO-G071RB, STM32G071RB Cortex-M0+ at 64 MHz (HSI16+PLL); "
            "USART2 PA2/PA3 on the ST-LINK virtual COM port",
            template="stm32g0",
            cpu="cortex-m0plus",
            arch_flags=("-mfloat-abi=soft",),
            has_fpu=False,
            has_dwt_cyccnt=False,  # ARMv6-M has no CYCCNT: SysTick on the core clock
            clock_hz=64_000_000,
            flash=MemoryRegion(0x08000000, 128 * 1024),
            ram=MemoryRegion(0x20000000, 36 * 1024),
            num_irqs=32,
            uart_rx_buffer=1024,
            uart={"base": 0x40004400, "irq": 28, "pclk_hz": 64_000_000},
            pyocd_target="stm32g071rbtx",
            openocd_args=("-f", "interface/stlink.cfg", "-f", "target/stm32g0x.cfg"),
        ),
    )
}

QEMU_BOARDS = [name for name, b in BOARDS.items() if b.is_qemu]
DEFAULT_BOARD = "qemu-mps2-an386"


def get_board(name: str | Board) -> Board:
    """The table entry for `name` (a Board passes through); clear error for unknown names."""
    if isinstance(name, Board):
        return name
    try:
        return BOARDS[name]
    except KeyError:
        raise LenetEdgeError(
            f"unknown board '{name}'; known boards: {', '.join(BOARDS)}"
        ) from None
