"""Worst-case stack depth from GCC's per-function stack usage and call graph.

The firmware is compiled with `-fstack-usage -fcallgraph-info=su`: every object gets a
`.ci` file (VCG graph: one node per function with its frame size, one edge per direct
call). The worst case is the deepest path from `main` plus the deepest interrupt handler
plus the hardware exception frame (interrupts share one priority, so they do not nest).
Calls into the C library / libgcc and indirect calls have no frame information; they are
listed, and a fixed allowance is added for them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_NODE = re.compile(r'node: \{ title: "([^"]+)" label: "([^"]*)"')
_EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
_FRAME = re.compile(r"\\n(\d+) bytes \((\w+(?:,\w+)*)\)")

# Frame of a leaf library routine (memcpy, __aeabi_*): generous for newlib-nano/libgcc.
LIBRARY_ALLOWANCE = 64
INTERRUPT_ROOTS = ("SysTick_Handler", "port_uart_irq_handler")
# Entry points and handlers are never the target of a function pointer.
NOT_CALLED_BY_POINTER = {"reset_c", "main", "fault_report", "protocol_serve"} | set(INTERRUPT_ROOTS)


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
        }


def _parse(build_dir: Path) -> tuple[dict[str, int], dict[str, set[str]], list[str]]:
    frames: dict[str, int] = {}
    calls: dict[str, set[str]] = {}
    dynamic: list[str] = []
    for ci in sorted(build_dir.rglob("*.ci")):
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


def analyse_stack(build_dir: str | Path, has_fpu: bool) -> StackReport:
    build_dir = Path(build_dir)
    frames, calls, dynamic = _parse(build_dir)
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
            # A call through a pointer may reach any function not already on the path:
            # take the deepest of them (an upper bound).
            unresolved.add(fn)
            options = [deepest(f, active) for f in sorted(frames)
                       if f not in active and f not in NOT_CALLED_BY_POINTER and not f.endswith("_Handler")]
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

    main_bytes, main_path = deepest("main", frozenset())
    # Reset_Handler is naked; reset_c calls main.
    main_bytes += frames.get("reset_c", 0)
    irq_bytes = max((deepest(r, frozenset())[0] for r in INTERRUPT_ROOTS if r in frames), default=0)
    # 8 words of basic frame (+ alignment); with an FPU, 18 more words of FP context.
    exception_frame = 36 + (72 if has_fpu else 0)
    largest = sorted(frames.items(), key=lambda kv: (-kv[1], kv[0]))[:8]
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
    )
