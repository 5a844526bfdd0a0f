"""Estimated cycles beside guest instructions: the bench's QEMU TCG plugin (cycles_plugin.c).

QEMU counts instructions, not cycles; as kernels get tighter the two part ways (a kernel
can lose instructions and gain cycles). The plugin classifies every executed instruction
and applies the core's timing table (Cortex-M TRMs; assumptions in the plugin's header
and the README: zero wait states, no caches, single issue). It is compiled here with the
host gcc, once per source version, and loaded with `qemu-system-arm -plugin`.

The device brackets what it measures with calls to `board_counter_read`; the plugin logs
its running totals at the entry of that function, of `lenet5_invoke[_traced]` and of the
protocol's per-layer trace callback, so the host takes the same differences the device
takes with its counter: per inference (model entry -> the counter read after it) and per
layer (as the TRACE reply's counts).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np

from lenet_edge.cpus import get_cpu
from lenet_edge.errors import LenetEdgeError

# -mcpu -> the plugin's timing table.
# Firmware functions whose entries the plugin marks (see the module docstring): the model
# library's NAME_invoke[_traced] (export --name; an ensemble's wrapper, e.g. boosted_invoke).
DEFAULT_MODEL = "lenet5"


def start_symbols(model: str = DEFAULT_MODEL) -> tuple[str, str]:
    return (f"{model}_invoke", f"{model}_invoke_traced")
LAYER_END = "trace_fn"
COUNTER_READ = "board_counter_read"


def plugin_source() -> Path:
    return Path(str(resources.files("lenet_edge") / "cycles_plugin.c"))


def build_plugin(work: Path) -> Path:
    """gcc -shared the plugin into ``work`` (reused while its source is unchanged)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise LenetEdgeError("the cycle estimator needs the host C compiler; install it with: "
                             "apt-get install --no-install-recommends gcc")
    source = plugin_source()
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    lib = Path(work) / f"cycles_plugin-{digest}.so"
    if not lib.is_file():
        lib.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([gcc, "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror",
                               "-o", str(lib), str(source)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise LenetEdgeError(f"building the cycle plugin failed:\n{proc.stderr.strip()}")
    return lib


def _symbols(elf: Path) -> dict[str, int]:
    out = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    table = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tT":
            table[parts[2]] = int(parts[0], 16) & ~1
    return table


def _marks(elf: Path, model: str = DEFAULT_MODEL) -> dict[int, str]:
    table = _symbols(elf)
    start = start_symbols(model)
    names = [n for n in start if n in table] + [LAYER_END, COUNTER_READ]
    missing = [n for n in (LAYER_END, COUNTER_READ) if n not in table]
    if missing or not any(n in table for n in start):
        raise LenetEdgeError(f"{elf.name}: no {' or '.join(missing or start)} symbol: the "
                             "cycle estimator cannot find where the device measures")
    kinds = {n: "start" if n in start else "layer" if n == LAYER_END else "read" for n in names}
    return {table[n]: kinds[n] for n in names}


def parse_marks(lines: list[str], kinds: dict[int, str], layers: int) -> dict:
    """The marks' running totals -> per plain inference (instructions, cycles) and, for
    the traced ones, per layer. A plain inference runs from the model's entry to the
    next counter read; a traced one reports ``layers`` times, each from the counter read
    that ended the previous report (or the model's entry)."""
    events = []
    for line in lines:
        parts = line.split()
        if len(parts) == 4 and parts[0] == "MARK":
            events.append((kinds.get(int(parts[1], 16)), int(parts[2]), int(parts[3])))
    inferences: list[tuple[int, int]] = []
    traced: list[list[tuple[int, int]]] = []
    i = 0
    while i < len(events):
        kind, insns, cycles = events[i]
        if kind != "start":
            i += 1
            continue
        base, current, j = (insns, cycles), [], i + 1
        while j < len(events) and events[j][0] == "start":  # lenet5_invoke -> _traced
            j += 1
        if j < len(events) and events[j][0] == "read":  # plain: entry -> counter read
            inferences.append((events[j][1] - insns, events[j][2] - cycles))
            i = j + 1
            continue
        while j < len(events) and len(current) < layers:
            k, n, c = events[j]
            if k == "layer":
                current.append((n - base[0], c - base[1]))
            elif k == "read":
                base = (n, c)
            j += 1
        if len(current) == layers:
            traced.append(current)
        i = j
    # Per layer, the traced run with the fewest cycles there: the host's next request
    # arriving over the UART interrupts some runs, not all.
    best = [min((run[k] for run in traced), key=lambda nc: nc[1]) for k in range(layers)]
    return {"inferences": inferences, "layers": best if traced else None}


def estimate_cycles(board: str, elf: Path, cpu: str, inputs: np.ndarray,
                    layer_names: list[str], work: Path, model: str = DEFAULT_MODEL) -> dict:
    """Run ``elf`` on ``board`` under the plugin: each input inferred once, the first one
    traced. Returns cycles_est (median), its instruction count as the plugin saw it,
    cycles_est_per_layer keyed by ``layer_names`` (the bench's per-layer keys, in order),
    and cycles_est_runs: (instructions, cycles) of every plain inference, in input order
    (an ensemble's digits differ in cost: the bench weighs them by kind). ``model``: the
    library's name (NAME_invoke)."""
    from lenet_edge.flows import emulated_session

    core = get_cpu(cpu).cycle_table  # the CPU table names each core's timing table
    plugin = build_plugin(work)
    kinds = _marks(elf, model)
    with tempfile.TemporaryDirectory(prefix="lenet-edge-cycles-") as tmp:
        log = Path(tmp) / "marks.txt"
        args = ",".join([str(plugin), f"core={core}", f"out={log}"]
                        + [f"mark={addr:x}" for addr in kinds])
        with emulated_session(board, elf, emulate=True, extra_args=("-plugin", args)) as session:
            for x in inputs:
                session.infer(x)
            session.trace(inputs[0])
        lines = log.read_text().splitlines()
    parsed = parse_marks(lines, kinds, len(layer_names))
    if not parsed["inferences"] or parsed["layers"] is None:
        raise LenetEdgeError(f"{board}: the cycle plugin saw no complete inference")
    runs = np.array(parsed["inferences"])
    pick = int(np.argsort(runs[:, 1])[len(runs) // 2])  # the median run by cycles
    return {
        "cycles_est": int(runs[pick, 1]),
        "cycles_est_instructions": int(runs[pick, 0]),
        "cycles_est_per_layer": {name: int(c) for name, (_, c) in zip(layer_names,
                                                                      parsed["layers"])},
        "cycles_est_instructions_per_layer": {name: int(n) for name, (n, _) in
                                              zip(layer_names, parsed["layers"])},
        "cycles_model": f"lenet_edge/cycles_plugin.c core={core}",
        "cycles_est_runs": [[int(n), int(c)] for n, c in parsed["inferences"]],
    }
