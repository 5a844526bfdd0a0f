"""Static memory plan: where each intermediate tensor lives in the one arena.

Computed at export time from the step list. The C API's input and output buffers hold the
model's input and output tensors, so the arena only holds intermediates. Buffers whose
lifetimes overlap never share bytes (a step's input and output included); others are
packed greedily, largest first, at the lowest offset that fits (TFLM's greedy strategy).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lenet_edge.codegen.lower import Program

ALIGN = 4  # keeps every buffer word-aligned for future SIMD kernels


@dataclass(frozen=True)
class Location:
    base: str  # "input", "output" or "arena"
    offset: int = 0


@dataclass
class MemoryPlan:
    arena_bytes: int
    locations: dict[int, Location]  # tensor index -> where it lives
    buffers: list[tuple[int, int, int, int, int]]  # (tensor, offset, size, first, last)
    # Where the caller may place the model input inside the arena (NAME_input_buffer()):
    # bytes no step writes before the input's last read. None when no such gap fits.
    input_slot: int | None = None
    # The plan's decisions about steps, by the output tensor each step writes: the RESHAPEs
    # that share their input's memory (no code), and the steps that run in place.
    aliased: frozenset[int] = frozenset()
    in_place: frozenset[int] = frozenset()

    def is_alias(self, step) -> bool:
        return step.output in self.aliased

    def is_in_place(self, step) -> bool:
        return step.output in self.in_place
    # Step name -> arena offset of its scratch (Step.scratch_bytes), where a gap fits it
    # without growing the arena; a step missing here keeps its scratch on the stack.
    scratch: dict[str, int] = field(default_factory=dict)


def plan_memory(program: Program) -> MemoryPlan:
    graph = program.graph
    last_read: dict[int, int] = {}
    for i, step in enumerate(program.steps):
        for t in (step.input, *step.extra_inputs):
            last_read[t] = i
    # RESHAPE steps alias their input, except into the caller's output buffer. Elementwise
    # steps (tables) run in place when their input is dead afterwards.
    root: dict[int, int] = {}
    members: dict[int, list[int]] = {}
    aliased: set[int] = set()
    in_place_steps: set[int] = set()

    def find(t: int) -> int:
        return root.get(t, t)

    for i, step in enumerate(program.steps):
        alias = step.alias and step.output != program.output
        r = find(step.input)
        in_place = (step.in_place_ok and not step.extra_inputs and step.output != program.output
                    and r != find(program.input)
                    and all(last_read.get(m, -1) <= i for m in members.get(r, [r])))
        if alias:
            aliased.add(step.output)
        if in_place:
            in_place_steps.add(step.output)
        if alias or in_place:
            root[step.output] = r
            members.setdefault(r, [r]).append(step.output)

    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for i, step in enumerate(program.steps):
        for t in (step.input, step.output, *step.extra_inputs):
            r = find(t)
            first.setdefault(r, i)
            last[r] = i
    locations: dict[int, Location] = {}
    fixed = {find(program.input): Location("input"), find(program.output): Location("output")}
    sizes = {r: graph.tensor(r).size for r in first if r not in fixed}
    order = sorted(sizes, key=lambda r: (-sizes[r], first[r], r))
    placed: list[tuple[int, int, int, int, int]] = []
    for r in order:
        offset = 0
        conflicts = sorted((o, s) for t, o, s, f, l in placed
                           if f <= last[r] and first[r] <= l)
        for o, s in conflicts:
            if offset + sizes[r] <= o:
                break
            offset = max(offset, _align(o + s))
        placed.append((r, offset, sizes[r], first[r], last[r]))
    roots = {r: Location("arena", o) for r, o, *_ in placed}
    roots.update(fixed)
    for step in program.steps:
        for t in (step.input, step.output, *step.extra_inputs):
            locations[t] = roots[find(t)]
    arena = _align(max((o + s for _, o, s, *_ in placed), default=0))
    # The input lives from before the first step to its last read: it may share bytes only
    # with buffers first written after that.
    input_root = find(program.input)
    input_size = graph.tensor(program.input).size
    slot = lowest_fit(input_size, [(o, s) for _, o, s, f, _ in placed if f <= last.get(input_root, 0)])
    scratch = {}
    for i, step in enumerate(program.steps):
        if step.scratch_bytes:
            at = lowest_fit(step.scratch_bytes, [(o, s) for _, o, s, f, l in placed
                                                  if f <= i <= l])
            if at + step.scratch_bytes <= arena:
                scratch[step.name] = at
    return MemoryPlan(arena_bytes=arena, locations=locations,
                      buffers=sorted(placed, key=lambda b: (b[1], b[0])),
                      input_slot=slot if slot + input_size <= arena else None,
                      aliased=frozenset(aliased), in_place=frozenset(in_place_steps),
                      scratch=scratch)


def lowest_fit(size: int, busy: list[tuple[int, int]]) -> int:
    """Lowest aligned offset where `size` bytes overlap none of the (offset, size) spans."""
    offset = 0
    for o, s in sorted(busy):
        if offset + size <= o:
            break
        offset = max(offset, _align(o + s))
    return offset


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN
