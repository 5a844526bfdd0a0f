"""The generator's one entry point: .tflite bytes -> C library files (+ what was planned)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lenet_edge.codegen.cross import CPUS
from lenet_edge.codegen.emit import DEFAULT_NAME, Stats, check_name, kernel_paths, program_stats, render
from lenet_edge.codegen.fold import fold_batch_shape
from lenet_edge.codegen.lower import Program, lower
from lenet_edge.codegen.memory_plan import MemoryPlan, plan_memory
from lenet_edge.codegen.reader import parse_model
from lenet_edge.codegen.validate import validate_graph


@dataclass
class GeneratedLibrary:
    files: dict[str, str]  # file name -> C text
    program: Program
    plan: MemoryPlan
    stats: Stats
    paths: tuple[str, ...] = ("portable",)  # kernel variants in the C (mve, dsp, portable)
    prefix: str = DEFAULT_NAME  # export --name: NAME_invoke, NAME_model.h, ...
    optimize: str = "size"  # export --optimize

    @property
    def traced_tensors(self) -> list[tuple[int, int]]:
        """(tensor index, size) in the order lenet5_invoke_traced reports them."""
        g = self.program.graph
        return [(t, g.tensor(t).size) for s in self.program.steps for t in s.traced]

    def write(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in sorted(self.files.items()):
            (directory / name).write_text(text, encoding="utf-8", newline="\n")
        return directory


def generate_c(model: bytes, name: str = "model.tflite", *, fuse: bool = True,
               cpus=CPUS, prefix: str = DEFAULT_NAME, optimize: str = "size",
               shared_arena: str | None = None) -> GeneratedLibrary:
    """``fuse=False``: one step per op, every op output traced (the test build);
    ``cpus``: the -mcpu names whose kernel variants (Helium, DSP) are emitted;
    ``prefix``: the library's name (`export --name`); ``optimize``: "size" or "speed"
    (`export --optimize`, lower.lower); ``shared_arena``: the extern arena array the
    library uses instead of its own (emit.render; the ensemble's nets share one)."""
    check_name(prefix)
    graph = fold_batch_shape(parse_model(model, name))
    validate_graph(graph)
    program = lower(graph, fuse=fuse, optimize=optimize)
    plan = plan_memory(program)
    paths = kernel_paths(cpus)
    files = render(program, plan, paths, prefix, shared_arena)
    return GeneratedLibrary(files=files, program=program, plan=plan,
                            stats=program_stats(program, plan), paths=paths, prefix=prefix,
                            optimize=optimize)
