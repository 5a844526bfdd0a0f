"""Render the C library (Jinja2 templates) from a lowered program and its memory plan.

Output is a pure function of the model bytes and the options: no timestamps, no paths,
no dict-order dependence, so two exports of the same model are byte-identical.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np

from lenet_edge import __version__
from lenet_edge.codegen.lower import ConstArray, Program
from lenet_edge.codegen.memory_plan import Location, MemoryPlan
from lenet_edge.quantmath import quantize_pixels
from lenet_edge.cpus import get_cpu

DEFAULT_NAME = "lenet5"  # the prefix of every public symbol, macro and file (export --name)
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
_BANNER_MARK = "@@LENET_EDGE_BANNER@@"
_ARENA_MARK = "@@LENET_EDGE_SHARED_ARENA@@"
HEADER = "lenet5_model.h"
SOURCES = ("lenet5_model.c",)
FILES = (HEADER, "lenet5_weights.h") + SOURCES + ("CMakeLists.txt",)
# The fixed-point helpers: a plain C header (not a template), pasted into the .c as is.
FIXEDPOINT_H = Path(__file__).parent / "templates" / "fixedpoint.h"


@dataclass
class Stats:
    macs_dense: int
    macs_executed: int
    weights_bytes: int
    arena_bytes: int


def program_stats(program: Program, plan: MemoryPlan) -> Stats:
    return Stats(
        macs_dense=sum(s.macs_dense for s in program.steps),
        macs_executed=sum(s.macs_executed for s in program.steps),
        # What the portable C compiles; the other variants swap in their own layouts.
        weights_bytes=sum(c.nbytes for c in program.constants
                          if not c.feature or "portable" in _users(c.feature)),
        arena_bytes=plan.arena_bytes,
    )


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        # An op's kernel lives beside it in ops/, named kernels/<kernel>.c.j2 like the
        # shared ones of templates/kernels/.
        loader=jinja2.ChoiceLoader([
            jinja2.PackageLoader("lenet_edge.codegen", "templates"),
            jinja2.PrefixLoader({"kernels": jinja2.PackageLoader("lenet_edge.codegen", "ops")}),
        ]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=False,
        lstrip_blocks=False,
    )
    env.filters["c_array"] = _c_array
    return env


def _c_array(values: np.ndarray, per_line: int = 16) -> str:
    flat = [int(v) for v in np.asarray(values).reshape(-1)] or [0]
    lines = []
    for i in range(0, len(flat), per_line):
        lines.append("    " + ", ".join(str(v) for v in flat[i:i + per_line]) + ",")
    return "\n".join(lines)


def _expr(loc: Location) -> str:
    if loc.base == "arena":
        return f"(ARENA + {loc.offset})"
    return loc.base


def pixel_offset(scale: float, zero_point: int) -> tuple[int | None, np.ndarray]:
    """How raw pixels p (real p/255) quantize, by the one rule (quantmath.quantize_pixels):
    a constant offset when exact, else a table."""
    table = quantize_pixels(np.arange(256), scale, zero_point)
    offsets = {int(q) - p for p, q in enumerate(table)}
    return (offsets.pop() if len(offsets) == 1 else None), table


# A constant's feature names the kernel variants that read it ("" = all; "a+b" = a and b;
# "scalar" = all but Helium); it is compiled only for them (guard) and dropped when none
# of them is emitted.
_PATH_MACROS = {"mve": "LENET5_HELIUM", "dsp": "LENET5_DSP", "mlal": "LENET5_MLAL",
                "portable": "LENET5_PORTABLE"}


def _users(feature: str) -> set[str]:
    return {"dsp", "mlal", "portable"} if feature == "scalar" else set(feature.split("+"))


def _guard(feature: str, paths: tuple[str, ...]) -> str | None:
    users = _users(feature) & set(paths)
    if not feature or set(paths) <= users:
        return None
    return " || ".join(_PATH_MACROS[p] for p in paths if p in users)


def kernel_paths(cpus) -> tuple[str, ...]:
    """Which kernel variants to emit for these -mcpu names (order: preferred first); the
    portable one always (the host build uses it)."""
    wanted = {get_cpu(cpu).kernels for cpu in cpus} | {"portable"}
    return tuple(p for p in ("mve", "dsp", "mlal", "portable") if p in wanted)


def check_name(name: str) -> str:
    """A valid --name: lower-case C identifier, not ending in '_' (it is a prefix)."""
    from lenet_edge.errors import LenetEdgeError

    if not _NAME_RE.match(name) or name.endswith("_"):
        raise LenetEdgeError(
            f"--name {name!r} is not usable as a C prefix: use 1-31 lower-case letters, digits "
            "and '_', starting with a letter and not ending in '_' (e.g. digits_v2)")
    return name


def apply_name(files: dict[str, str], name: str) -> dict[str, str]:
    """The library with every `lenet5` / `LENET5` identifier and file name prefix replaced by
    `name` / `NAME`. One rule for all templates (kernels included): the templates are
    written for `lenet5`, so the default name leaves the bytes exactly as they are."""
    check_name(name)
    if name == DEFAULT_NAME:
        return dict(files)
    lower = re.compile(r"\blenet5(?=[^A-Za-z0-9]|$)")
    upper = re.compile(r"\bLENET5(?=[^A-Za-z0-9]|$)")
    renamed = {}
    for file_name, text in files.items():
        text = upper.sub(name.upper(), lower.sub(name, text))
        renamed[lower.sub(name, file_name)] = text
    return renamed


def render(program: Program, plan: MemoryPlan,
           paths: tuple[str, ...] = ("mve", "dsp", "portable"),
           name: str = DEFAULT_NAME, shared_arena: str | None = None) -> dict[str, str]:
    """The C library as {file name: text}; ``paths`` are the kernel variants emitted (the
    compiler picks one from the target's feature macros); ``name`` prefixes every public
    symbol, macro and file (`NAME_invoke`, `NAME_model.h`, `NAME_INPUT_SIZE`, ...);
    ``shared_arena``: the library defines no arena but uses this extern int32_t array
    (at least NAME_ARENA_BYTES), which its caller defines (an ensemble's nets share one)."""
    graph = program.graph
    env = _env()
    stats = program_stats(program, plan)
    x, y = graph.tensor(program.input), graph.tensor(program.output)
    offset, pixel_table = pixel_offset(x.quant.scale, x.quant.zero_point)
    constants = [c for c in program.constants if not c.feature or _users(c.feature) & set(paths)]
    guards = {c.name: _guard(c.feature, paths) for c in constants if _guard(c.feature, paths)}
    if offset is None:
        constants.append(ConstArray("lenet5_pixel_table", "int8_t", pixel_table,
                                    "raw pixel -> int8 input"))
    kernels, calls, traced = [], [], []
    for step in program.steps:
        title = " + ".join(f"op {i} {graph.op(i).kind}" for i in step.op_indices)
        step.title = title
        in_expr, out_expr = _expr(plan.locations[step.input]), _expr(plan.locations[step.output])
        code = None
        if not plan.is_alias(step):
            template = env.get_template(f"kernels/{step.kernel}.c.j2")
            kernels.append(template.render(s=step, p=step.params, paths=paths,
                                           scratch=plan.scratch.get(step.name))
                           .rstrip("\n"))
            extra = "".join(f"{_expr(plan.locations[t])}, " for t in step.extra_inputs)
            code = f"{step.name}({in_expr}, {extra}{out_expr});"
        call_traced = []
        for t in step.traced:
            entry = dict(index=t, expr=_expr(plan.locations[t]), size=graph.tensor(t).size)
            call_traced.append(entry)
            traced.append(entry)
        calls.append(dict(code=code, traced=call_traced))
    banner = _banner(program, plan, stats)
    ctx = dict(
        banner=banner,
        input_shape="x".join(str(d) for d in x.shape), input_size=x.size,
        input_scale=_float_literal(x.quant.scale), input_zero_point=x.quant.zero_point,
        output_shape="x".join(str(d) for d in y.shape), output_size=y.size,
        output_scale=_float_literal(y.quant.scale), output_zero_point=y.quant.zero_point,
        arena_bytes=plan.arena_bytes, arena_words=max(1, plan.arena_bytes // 4),
        input_slot=plan.input_slot, shared_arena=_ARENA_MARK if shared_arena else None,
        model_hash=graph.sha256, traced=traced, constants=constants,
        kernels=kernels, calls=calls, pixel_offset=offset, paths=paths, guards=guards,
        version=__version__, fixedpoint_h=FIXEDPOINT_H.read_text(encoding="utf-8").rstrip("\n"),
    )
    # The banner names the model file, and the shared arena is the caller's symbol: both keep
    # their own names, set in after renaming.
    ctx["banner"] = _BANNER_MARK
    files = apply_name({f: env.get_template(f + ".j2").render(**ctx) for f in FILES}, name)
    return {f: text.replace(_BANNER_MARK, banner).replace(_ARENA_MARK, shared_arena or "")
            for f, text in files.items()}


def _float_literal(v: float) -> str:
    """Shortest decimal that reads back as the same float32."""
    f = np.float32(v)
    for digits in range(6, 12):
        text = f"{float(f):.{digits}g}"
        if np.float32(float(text)) == f:
            break
    if "e" not in text and "." not in text:
        text += ".0"
    return text


def _banner(program: Program, plan: MemoryPlan, stats: Stats) -> str:
    graph = program.graph
    lines = [
        f"Generated by lenet-edge {__version__} (codegen). Do not edit: re-run `lenet-edge export`.",
        f"Model:   {graph.name}",
        f"sha256:  {graph.sha256}",
        f"MACs:    {stats.macs_executed} executed of {stats.macs_dense} dense "
        "(all-zero kernel slices skipped)",
        f"Weights: {stats.weights_bytes} bytes of constants (weights, biases, multipliers, tables)",
        f"Arena:   {stats.arena_bytes} bytes (static, planned at export time)",
        "Layers:",
    ]
    for step in program.steps:
        t = graph.tensor(step.output)
        loc = plan.locations[step.output]
        where = f"arena+{loc.offset}" if loc.base == "arena" else loc.base
        kind = "alias" if plan.is_alias(step) else step.kernel + (" in place" if plan.is_in_place(step) else "")
        lines.append(f"  {step.title:<50} -> tensor {t.index:<3} {'x'.join(map(str, t.shape)):<12}"
                     f" {kind:<16} {where}")
    return "/*\n" + "\n".join((" * " + line).rstrip() for line in lines) + "\n */"
