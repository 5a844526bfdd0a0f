"""Cross-compile the generated C for Cortex-M CPUs with arm-none-eabi-gcc; measure code size."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from lenet_edge import toolchain
from lenet_edge.cpus import CPUS, get_cpu
from lenet_edge.errors import LenetEdgeError

OPT = "-Os"  # the export's code-size figure; the firmware compiles at -O2 (render.DEFAULT_OPT)
CFLAGS = ["-std=c99", OPT, "-ffunction-sections", "-fdata-sections",
          "-Wall", "-Wextra", "-Werror", "-pedantic"]
GCC = toolchain.GCC
have_arm_gcc = toolchain.have_arm_gcc


def compile_for_cpu(c_dir: str | Path, cpu: str, out_dir: str | Path, opt: str = OPT) -> list[Path]:
    """Compile every .c of the library to objects for ``cpu``; returns the object paths."""
    flags = get_cpu(cpu).gcc_flags
    toolchain.check_toolchain(("gcc",), make=False, newlib=False)
    c_dir, out_dir = Path(c_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    objects = []
    for source in sorted(c_dir.glob("*.c")):
        obj = out_dir / (source.stem + ".o")
        cflags = [opt if flag == OPT else flag for flag in CFLAGS]
        cmd = [GCC, *flags, *cflags, f"-I{c_dir}", "-c", str(source), "-o", str(obj)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise LenetEdgeError(f"{cpu} build failed:\n{' '.join(cmd)}\n{proc.stderr.strip()}")
        objects.append(obj)
    return objects


def section_sizes(objects: list[Path]) -> dict[str, int]:
    """Bytes per kind summed over objects: code (.text*), rodata (.rodata*), data, bss."""
    totals = {"code": 0, "rodata": 0, "data": 0, "bss": 0}
    for name, size in toolchain.section_sizes(*objects).items():
        for kind in totals:
            if name.startswith("." + ("text" if kind == "code" else kind)):
                totals[kind] += size
    return totals


def code_bytes(c_dir: str | Path, cpus=CPUS, opt: str = OPT) -> dict[str, dict[str, int]]:
    """Per CPU, compiled with ``opt`` (-Os): code (.text), rodata (weights, tables), data,
    bss, and text = code + rodata (what `size` calls text)."""
    result = {}
    with tempfile.TemporaryDirectory(prefix="lenet5-size-") as tmp:
        for cpu in cpus:
            sizes = section_sizes(compile_for_cpu(c_dir, cpu, Path(tmp) / cpu, opt))
            sizes["text"] = sizes["code"] + sizes["rodata"]
            result[cpu] = sizes
    return result
