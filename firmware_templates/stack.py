"""Worst-case stack depth from GCC's per-function stack usage and call graph.

The firmware is compiled with `-fstack-usage -fcallgraph-info=su`: every object gets a
`.ci` file (VCG graph: one node per function with its frame size, one edge per direct
call). The worst case is the deepest path from `main` plus the deepest interrupt handler
plus the hardware exception frame (interrupts share one priority, so they do not nest).
A call through a pointer may reach any function whose address the program takes (found in
the objects' relocations: references other than calls). Calls into the C library /
libgcc have no frame information; a fixed allowance is added for each.

This file is also the rendered firmware project's `common/stack_bound.py` (standard library
only), which its Makefile and CMakeLists.txt run between compiling and linking:

    python3 common/stack_bound.py --fpu 1 --margin 64 --ld build/stack_size.ld \
        --json build/stack.json build/common/main.o ...

writes the linker fragment `__stack_size = <bound + margin, 8-aligned>;` that reserves the
stack, or fails the build (exit 1) when the bound cannot be computed: recursion, frames of
dynamic size, an object without call-graph information, or a call through a pointer with
no possible target.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

_NODE = re.compile(r'node: \{ title: "([^"]+)" label: "([^"]*)"')
_EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
_FRAME = re.compile(r"\\n(\d+) bytes \((\w+(?:,\w+)*)\)")
_RELOC = re.compile(r"^\s*[0-9a-fA-F]+\s+[0-9a-fA-F]+\s+(R_ARM_\w+)\s+[0-9a-fA-F]+\s+(\S+)", re.M)
# Relocations of branch instructions: a call, not an address taken.
_CALL_RELOCS = {"R_ARM_THM_CALL", "R_ARM_THM_JUMP24", "R_ARM_THM_JUMP19", "R_ARM_THM_JUMP11",
                "R_ARM_THM_JUMP8", "R_ARM_CALL", "R_ARM_JUMP24", "R_ARM_PC24"}

# Frame of a leaf library routine (memcpy, __aeabi_*): generous for newlib-nano/libgcc.
LIBRARY_ALLOWANCE = 64
# Added to the bound to size the reserved stack (covers rounding and the paint margin).
DEFAULT_MARGIN = 64
INTERRUPT_ROOTS = ("SysTick_Handler", "port_uart_irq_handler")


@dataclass
class StackReport:
    worst_case_bytes: int
    main_path: list[str]
    main_bytes: int
    interrupt_bytes: int
    exception_frame_bytes: int
    largest_frames: list[tuple[str, int]]
    unresolved_calls: list[str] = field(default_factory=list)
    dynamic: list[str] = field(default_factory=list)
    recursive: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # why no bound could be computed

    def to_dict(self) -> dict:
        return {
            "worst_case_bytes": self.worst_case_bytes,
            "main_path": self.main_path,
            "main_bytes": self.main_bytes,
            "interrupt_bytes": self.interrupt_bytes,
            "exception_frame_bytes": self.exception_frame_bytes,
            "largest_frames": [{"function": f, "bytes": b} for f, b in self.largest_frames],
            "unresolved_calls": self.unresolved_calls,
            "dynamic_frames": self.dynamic,
            "recursive": self.recursive,
            "problems": self.problems,
        }


def _bare(title: str) -> str:
    """`common/x.c:name` (a static function) -> `name`."""
    return title.rsplit(":", 1)[-1]


def _parse(ci_files: list[Path]) -> tuple[dict[str, int], dict[str, set[str]], list[str]]:
    frames: dict[str, int] = {}
    calls: dict[str, set[str]] = {}
    dynamic: list[str] = []
    for ci in ci_files:
        text = ci.read_text(encoding="utf-8", errors="replace")
        for title, label in _NODE.findall(text):
            m = _FRAME.search(label)
            if m:
                frames[title] = max(frames.get(title, 0), int(m.group(1)))
                if "dynamic" in m.group(2) and "bounded" not in m.group(2):
                    dynamic.append(title)
        for src, dst in _EDGE.findall(text):
            calls.setdefault(src, set()).add(dst)
    return frames, calls, sorted(set(dynamic))


def address_taken(objects: list[Path], readelf: str = "arm-none-eabi-readelf") -> set[str]:
    """Names of symbols the objects reference other than by a call (function pointers)."""
    names: set[str] = set()
    for obj in objects:
        out = subprocess.run([readelf, "-rW", str(obj)], capture_output=True, text=True, check=True).stdout
        names.update(sym for kind, sym in _RELOC.findall(out) if kind not in _CALL_RELOCS)
    return names


def analyse_stack(objects: list[str | Path], has_fpu: bool, readelf: str = "arm-none-eabi-readelf") -> StackReport:
    """The bound for the program linked from `objects` (each with its `.ci` beside it)."""
    objects = [Path(o) for o in objects]
    problems = [f"{o.with_suffix('.ci')} is missing (compile with -fcallgraph-info=su)"
                for o in objects if not o.with_suffix(".ci").is_file()]
    frames, calls, dynamic = _parse([o.with_suffix(".ci") for o in objects if o.with_suffix(".ci").is_file()])
    taken = address_taken(objects, readelf) if objects else set()
    # Handlers sit in the vector table (an address taken) but are entered by the hardware,
    # counted below as interrupts.
    pointer_targets = sorted(f for f in frames if _bare(f) in taken and not _bare(f).endswith("_Handler")
                             and _bare(f) not in INTERRUPT_ROOTS)
    unresolved: set[str] = set()
    recursive: set[str] = set()
    memo: dict[str, tuple[int, list[str]]] = {}

    def deepest(fn: str, active: frozenset[str]) -> tuple[int, list[str]]:
        if fn in memo:
            return memo[fn]
        if fn in active:
            recursive.add(fn)
            return 0, [fn + " (recursion)"]
        if fn == "__indirect_call":
            # A call through a pointer reaches one of the address-taken functions: the
            # deepest of them bounds it.
            unresolved.add(fn)
            if not pointer_targets:
                problems.append("a call through a pointer, but no function has its address taken")
            options = [deepest(f, active) for f in pointer_targets if f not in active]
            best = max(options, default=(0, []), key=lambda o: o[0])
            return best[0], [fn + " -> " + (best[1][0] if best[1] else "?")] + best[1][1:]
        if fn not in frames:
            unresolved.add(fn)
            return LIBRARY_ALLOWANCE, [fn + " (library)"]
        best, best_path = 0, []
        for callee in sorted(calls.get(fn, ())):
            depth, path = deepest(callee, active | {fn})
            if depth > best:
                best, best_path = depth, path
        result = (frames[fn] + best, [fn] + best_path)
        memo[fn] = result
        return result

    if "main" not in frames:
        problems.append("no frame information for main")
    main_bytes, main_path = deepest("main", frozenset())
    # Reset_Handler is naked; reset_c calls main.
    main_bytes += frames.get("reset_c", 0)
    irq_bytes = max((deepest(r, frozenset())[0] for r in INTERRUPT_ROOTS if r in frames), default=0)
    # 8 words of basic frame (+ alignment); with an FPU, 18 more words of FP context.
    exception_frame = 36 + (72 if has_fpu else 0)
    largest = sorted(frames.items(), key=lambda kv: (-kv[1], kv[0]))[:8]
    if recursive:
        problems.append("recursion: " + ", ".join(sorted(recursive)))
    if dynamic:
        problems.append("frames of dynamic size: " + ", ".join(dynamic))
    return StackReport(
        worst_case_bytes=main_bytes + irq_bytes + exception_frame,
        main_path=["reset_c"] + main_path,
        main_bytes=main_bytes,
        interrupt_bytes=irq_bytes,
        exception_frame_bytes=exception_frame,
        largest_frames=largest,
        unresolved_calls=sorted(unresolved),
        dynamic=dynamic,
        recursive=sorted(recursive),
        problems=problems,
    )


def reserve_for(worst_case_bytes: int, margin: int = DEFAULT_MARGIN) -> int:
    """The stack to reserve: the bound plus the margin, rounded up to 8 bytes (AAPCS)."""
    return (worst_case_bytes + margin + 7) // 8 * 8


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Reserve the firmware's stack from its static call-graph bound.")
    parser.add_argument("objects", nargs="+", type=Path)
    parser.add_argument("--fpu", type=int, choices=(0, 1), required=True)
    parser.add_argument("--margin", type=int, default=DEFAULT_MARGIN)
    parser.add_argument("--readelf", default="arm-none-eabi-readelf")
    parser.add_argument("--ld", type=Path, required=True, help="linker fragment to write")
    parser.add_argument("--json", type=Path, help="report to write")
    args = parser.parse_args(argv)
    report = analyse_stack(args.objects, bool(args.fpu), args.readelf)
    if report.problems:
        print("error: cannot bound the stack: " + "; ".join(report.problems), file=sys.stderr)
        return 1
    reserved = reserve_for(report.worst_case_bytes, args.margin)
    data = report.to_dict() | {"margin_bytes": args.margin, "reserved_bytes": reserved}
    args.ld.write_text(f"/* stack bound {report.worst_case_bytes} B + margin {args.margin} B */\n"
                       f"__stack_size = {reserved};\n", encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
