"""The Cortex-M CPU table: each core's gcc flags, architecture and kernel variant, once.

Everything that needs a fact about a core reads it here: the code generator (which kernel
variants to emit), the cross-compile size measurement, the board table (a board names its
CPU) and the firmware templates (vector table layout, fault registers, DWT).
"""

from __future__ import annotations

from dataclasses import dataclass

from lenet_edge.errors import LenetEdgeError

# Kernel variants of the generated C (codegen/ops/*_<variant>.c.j2): portable C on every core,
# SMLAD dual 16-bit MACs with the DSP extension, Helium (MVE) 16-lane int8 vectors, and on
# Thumb-2 cores without DSP (Cortex-M3) SMLAL with two out channels' weights in one word.
PORTABLE, DSP, MVE, MLAL = "portable", "dsp", "mve", "mlal"


@dataclass(frozen=True)
class Cpu:
    name: str  # gcc's -mcpu
    title: str  # for people
    arch: str  # gcc's architecture name for this core
    kernels: str  # PORTABLE, MLAL, DSP or MVE
    float_flags: tuple[str, ...]  # float ABI / FPU: the library uses no floating point
    has_fpu: bool
    cycle_table: str  # the cycle-estimate plugin's timing table (lenet_edge/cycles_plugin.c)

    @property
    def gcc_flags(self) -> tuple[str, ...]:
        return (f"-mcpu={self.name}", "-mthumb", *self.float_flags)

    @property
    def is_v6m(self) -> bool:
        """ARMv6-M: no DWT cycle counter, no configurable fault handlers, Thumb-1 only."""
        return self.arch == "armv6-m"

    @property
    def is_v8m(self) -> bool:
        """ARMv8-M mainline: has the SecureFault exception (vector 7)."""
        return self.arch.startswith("armv8")

    @property
    def has_dwt_cyccnt(self) -> bool:
        """The architecture offers DWT CYCCNT (an implementation, or QEMU, may still not)."""
        return not self.is_v6m


_SOFT = ("-mfloat-abi=soft",)

CPU_TABLE: dict[str, Cpu] = {
    c.name: c
    for c in (
        Cpu("cortex-m0", "Cortex-M0", "armv6-m", PORTABLE, _SOFT, False, "m0"),
        Cpu("cortex-m0plus", "Cortex-M0+", "armv6-m", PORTABLE, _SOFT, False, "m0"),
        Cpu("cortex-m3", "Cortex-M3", "armv7-m", MLAL, _SOFT, False, "m3"),
        Cpu("cortex-m4", "Cortex-M4F", "armv7e-m", DSP,
            ("-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"), True, "m4"),
        Cpu("cortex-m7", "Cortex-M7 (double-precision FPU)", "armv7e-m", DSP,
            ("-mfloat-abi=hard", "-mfpu=fpv5-d16"), True, "m7"),
        Cpu("cortex-m33", "Cortex-M33 (DSP, FPU)", "armv8-m.main", DSP,
            ("-mfloat-abi=hard", "-mfpu=fpv5-sp-d16"), True, "m33"),
        Cpu("cortex-m55", "Cortex-M55 (FPU, Helium)", "armv8.1-m.main", MVE,
            ("-mfloat-abi=hard",), True, "m55"),
    )
}
CPUS: tuple[str, ...] = tuple(CPU_TABLE)


def get_cpu(name: str | Cpu) -> Cpu:
    """The table entry for a -mcpu name (a Cpu passes through); clear error otherwise."""
    if isinstance(name, Cpu):
        return name
    try:
        return CPU_TABLE[name]
    except KeyError:
        raise LenetEdgeError(f"unknown CPU '{name}'; known CPUs: {', '.join(CPUS)}") from None
