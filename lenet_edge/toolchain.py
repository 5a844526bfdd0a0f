"""The GNU Arm toolchain, once: its tool names, the check that it is installed (with the
apt line that installs it), and the one parser of `arm-none-eabi-size -A`.

The code generator (cross-compiled code size) and the firmware build both use it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from lenet_edge.errors import LenetEdgeError

CROSS = "arm-none-eabi-"
GCC = CROSS + "gcc"
PACKAGES = "gcc-arm-none-eabi libnewlib-arm-none-eabi"
INSTALL = f"apt-get install --no-install-recommends {PACKAGES} make"


def have_arm_gcc() -> bool:
    return shutil.which(GCC) is not None


def check_toolchain(tools: tuple[str, ...] = ("gcc", "objcopy", "size", "nm"),
                    make: bool = True, newlib: bool = True) -> None:
    """One clear error naming the apt command when a tool (or newlib) is missing."""
    missing = [CROSS + t for t in tools if shutil.which(CROSS + t) is None]
    if make and shutil.which("make") is None:
        missing.append("make")
    if missing:
        raise LenetEdgeError(
            f"the GNU Arm toolchain is not installed (missing: {', '.join(missing)}); "
            f"install it with: sudo {INSTALL}"
        )
    if newlib:
        libc = subprocess.run([GCC, "-print-file-name=libc_nano.a"], capture_output=True, text=True)
        if not os.path.isabs(libc.stdout.strip()):
            raise LenetEdgeError(
                f"newlib for arm-none-eabi is not installed (no libc_nano.a); install it with: "
                f"sudo {INSTALL}"
            )


def section_sizes(*paths: str | Path) -> dict[str, int]:
    """Bytes per section name (".text", ".rodata.foo", ...) summed over the objects or
    images, as `arm-none-eabi-size -A -d` reports them."""
    proc = subprocess.run([CROSS + "size", "-A", "-d", *map(str, paths)], capture_output=True,
                          text=True, check=True)
    sizes: dict[str, int] = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            sizes[parts[0]] = sizes.get(parts[0], 0) + int(parts[1])
    return sizes
