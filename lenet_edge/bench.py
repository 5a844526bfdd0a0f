"""`lenet-edge bench`: instructions, flash and RAM of the generated firmware on every QEMU core.

For each variant it exports the bundled model once (every core's kernels are generated;
the compiler's -mcpu picks them), then for each board: builds the firmware, runs it under
QEMU with `-icount shift=0`, and measures over the real serial link:

- instructions per inference (one request at a time, so no UART interrupt lands inside),
  total and per layer (the device's TRACE counts), and per executed MAC;
- that the logits are byte-identical to the tflite-micro runtime's (speed never costs
  exactness: the bench refuses to report a figure for a firmware that is not exact);
- flash (weights, code, total) and RAM (arena, stack high-water mark measured on the
  device, the stack reserved from the static bound, and the total RAM the image claims:
  data + bss + arena + reserved stack, the build's figure);
- host-side validation throughput (pipelined INFER, digits/s);
- estimated cycles, total and per layer (lenet_edge/cycles.py: a second, short QEMU run
  under the project's TCG plugin with the core's timing table), unless --no-cycles;
- with --cmsis-nn DIR, all of the above for the same model built on CMSIS-NN's kernels
  (lenet_edge/cmsis_nn.py), side by side;
- with --optimize speed, the `export --optimize speed` build too, as ``VARIANT+speed``
  (a build that does not fit a board's flash is reported as ``{"error": ...}``).

Boosted LeNet-4 (``--variants boosted-lenet4``: the bundled ensemble, exported as
`export --ensemble` does) is measured by the same routine; what differs is explicit
(``EnsembleMix``): its answers are the TFLM ensemble's 41 bytes; its cost depends on net
1's early exit, so ``instructions`` (and ``cycles_est``) is the median of each kind (1-net
and 3-net digits, both among the digits measured) weighted by the share of 3-net digits
over the whole test set, beside ``instructions_one_net`` / ``instructions_three_nets``;
``macs_executed`` is the average per digit (net 1's MACs, plus nets 2 and 3's on that
share; ``macs_executed_all_nets`` when all three run); the per-layer figures are a 3-net
digit's, keyed ``net{k}#{tensor}`` from the export's per-net traced lists.

Prints a table and writes bench.json:
``bench["boards"][BOARD][VARIANT]`` with ``instructions``, ``instructions_per_layer``,
``instructions_per_mac``, ``macs_executed``, ``flash_bytes``, ``weights_bytes``,
``code_bytes``, ``arena_bytes``, ``stack_bytes`` (measured), ``stack_reserved_bytes``,
``stack_bound_bytes``, ``ram_bytes`` (data + bss + arena + reserved stack), ``digits_per_s``,
``cycles_est``, ``cycles_est_per_layer`` and, with --cmsis-nn, ``cmsis_nn`` (the same
keys for the CMSIS-NN build, plus ``digits_differing_from_tflm``); an ensemble's entry adds
``ensemble`` (the share of 3-net digits, nets per digit, digits measured of each kind),
``instructions_one_net``, ``instructions_three_nets``, ``macs_executed_all_nets`` and, with
cycles, ``cycles_est_one_net``, ``cycles_est_three_nets``.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from lenet_edge.bundled import ENSEMBLE_VARIANT, FAMILY, VARIANTS, bundled_model
from lenet_edge.cpus import CPUS
from lenet_edge.errors import LenetEdgeError
from lenet_edge.flows import check_board_name


@dataclass(frozen=True)
class EnsembleMix:
    """What differs when the firmware measured is an ensemble (Boosted LeNet-4): its cost
    per digit depends on net 1's early exit. ``nets_run``: the TFLM ensemble's nets for each
    measured digit (1 or 3; ``ensemble_digits`` puts both kinds among them); ``share_three``:
    the share of 3-net digits over the whole test set, which weighs the two kinds' figures
    (what `bench` and `zoo` report for the ensemble, computed here once)."""

    nets_run: np.ndarray
    share_three: float

    def weigh(self, values) -> tuple[int, int, int]:
        """(the weighted figure, the 1-net digits' median, the 3-net digits' median) of a
        figure measured per digit (instructions, cycles)."""
        values = np.asarray(values)
        one, three = (float(np.median(values[self.nets_run == k])) for k in (1, 3))
        return int(round((1 - self.share_three) * one + self.share_three * three)), \
            int(one), int(three)

    def macs(self, report: dict, key: str = "macs_executed") -> int:
        """The export report's MACs per digit on average: net 1's on every digit, nets 2
        and 3's on the 3-net share."""
        nets = report["nets"]
        return int(round(nets[0][key] + self.share_three * sum(n[key] for n in nets[1:])))


def ensemble_digits(nets_run: np.ndarray, count: int) -> list[int]:
    """The digits measured on the device: the first ``count``, plus the first of each kind
    (1 net, 3 nets) they lack, so that both kinds' medians are measured."""
    picked = list(range(min(count, len(nets_run))))
    for kind in (1, 3):
        if not (nets_run[picked] == kind).any():
            if not (nets_run == kind).any():
                raise LenetEdgeError(f"no test digit runs {kind} net{'s' * (kind > 1)} "
                                     "under the TFLM ensemble: its cost cannot be weighed")
            picked.append(int(np.flatnonzero(nets_run == kind)[0]))
    return picked


def _layer_names(report: dict) -> dict[int, str]:
    """Traced tensor index -> the ops that produce it ("CONV_2D+MAX_POOL_2D")."""
    return {layer["output_tensor"]: "+".join(layer["ops"]) for layer in report["layers"]}


def _ensemble_layer_keys(report: dict) -> list[tuple[str, int]]:
    """An ensemble's TRACE layers in order, from the export's per-net traced lists: (key
    ``net{k}#{tensor}``, tensor index); the nets' tensor indices coincide, the key names the
    net."""
    return [(f"net{k + 1}#{t['index']}", int(t["index"]))
            for k, net in enumerate(report["nets"]) for t in net["traced"]]


def _per_layer(report: dict, layers, ensemble: EnsembleMix | None) -> dict[str, int]:
    if ensemble is None:
        names = _layer_names(report)
        return {f"{names.get(t.tensor_index, 'tensor')}#{t.tensor_index}": int(t.count)
                for t in layers}
    keys = _ensemble_layer_keys(report)
    if [t.tensor_index for t in layers] != [index for _, index in keys]:
        raise LenetEdgeError("the ensemble firmware's traced layers are not its export's "
                             f"(device: {[t.tensor_index for t in layers]})")
    return {key: int(t.count) for (key, _), t in zip(keys, layers)}


def measure(board, variant: str, export_dir: Path, report: dict, work: Path,
            inputs: np.ndarray, expected: np.ndarray, throughput_inputs: np.ndarray,
            require_exact: bool = True, cycles: bool = True,
            ensemble: EnsembleMix | None = None) -> dict:
    """``require_exact=False`` (the CMSIS-NN anchor): count differing digits instead of
    refusing; ``cycles``: also estimate cycles (a second QEMU run under the cycle plugin,
    so the plugin's slow-down never touches the digits/s figure); ``ensemble``: the
    firmware is an ensemble's (``expected``: the TFLM ensemble's 41-byte answers; the
    figures that depend on its early exit are weighed by ``EnsembleMix``)."""
    from lenet_edge import flows

    build = flows.build(board, export_dir, firmware_dir=work / board.name)
    # Per layer and for the cycle estimate's traced run: a digit that runs every layer
    # (an ensemble's: a 3-net digit; its cycle digits hold both kinds, that one first).
    if ensemble is None:
        traced, cycle_digits = 0, list(range(min(5, len(inputs))))
    else:
        three, one = (list(np.flatnonzero(ensemble.nets_run == k)) for k in (3, 1))
        traced, cycle_digits = three[0], three[:3] + one[:2]
    # A real board's own image runs on QEMU's model of its chip.
    with flows.emulated_session(board, build.elf, emulate=True) as session:
        info = session.info(refresh=True)
        results = [session.infer(x) for x in inputs]
        layers = session.trace(inputs[traced])
        start = time.perf_counter()
        streamed = sum(1 for _ in session.infer_stream(enumerate(throughput_inputs)))
        digits_per_s = streamed / (time.perf_counter() - start)
        stack_used = session.info(refresh=True).int("stack_used")
    outputs = np.array([r.output for r in results])
    mismatches = int(np.sum(np.any(outputs != expected, axis=1)))
    if mismatches and require_exact:
        what = "the TFLM ensemble" if ensemble is not None else "TFLM"
        raise LenetEdgeError(f"{board.name} {variant}: {mismatches} of {len(inputs)} outputs differ "
                             f"from {what}; refusing to report speed for inexact firmware")
    counts = np.array([r.count for r in results])
    mix = {}
    if ensemble is None:
        instructions = int(np.median(counts))
        macs, macs_dense = int(report["macs_executed"]), int(report["macs_dense"])
    else:
        instructions, one, three = ensemble.weigh(counts)
        macs, macs_dense = ensemble.macs(report), ensemble.macs(report, "macs_dense")
        mix = {"instructions_one_net": one, "instructions_three_nets": three,
               "macs_executed_all_nets": int(report["macs_executed_all_nets"]),
               "ensemble": {"share_three_nets": round(ensemble.share_three, 4),
                            "nets_per_digit": round(1 + 2 * ensemble.share_three, 3),
                            "digits_one_net": int(np.sum(ensemble.nets_run == 1)),
                            "digits_three_nets": int(np.sum(ensemble.nets_run == 3))}}
    per_layer = _per_layer(report, layers, ensemble)
    s = build.sections
    code = int(s["text"] + s["rodata"])
    estimated = {}
    if cycles:
        from lenet_edge.cycles import estimate_cycles

        model = report["name"] if ensemble is not None else "lenet5"
        estimated = estimate_cycles(board, build.elf, info.fields["cpu"],
                                    inputs[cycle_digits], list(per_layer),
                                    work.parent / "cycles_plugin", model=model)
        runs = np.array(estimated.pop("cycles_est_runs")).reshape(-1, 2)
        if ensemble is not None:
            if len(runs) != len(cycle_digits):
                raise LenetEdgeError(f"{board.name}: the cycle plugin saw {len(runs)} "
                                     f"inferences for {len(cycle_digits)} digits")
            kinds = EnsembleMix(ensemble.nets_run[cycle_digits], ensemble.share_three)
            estimated["cycles_est"], estimated["cycles_est_one_net"], \
                estimated["cycles_est_three_nets"] = kinds.weigh(runs[:, 1])
            estimated["cycles_est_instructions"] = kinds.weigh(runs[:, 0])[0]
    return estimated | mix | {
        "cpu": info.fields["cpu"],
        "counter_unit": info.fields["counter_unit"],
        "counter_source": info.fields.get("counter_source"),
        "clock_hz": info.int("clock_hz"),
        "clock_status": info.fields.get("clock_status"),
        "counter_resolution": info.int("counter_resolution"),
        "instructions": instructions,
        "instructions_min": int(counts.min()),
        "instructions_max": int(counts.max()),
        "instructions_per_layer": per_layer,
        "macs_executed": macs,
        "macs_dense": macs_dense,
        "instructions_per_mac": round(instructions / macs, 3),
        "bit_exact_digits": len(inputs) - mismatches,
        "digits_differing_from_tflm": mismatches,
        "weights_bytes": int(s["weights"]),
        "code_bytes": code,
        "inference_code_bytes": (report.get("code_bytes") or {}).get(info.fields["cpu"]),
        "flash_bytes": int(build.flash_bytes),
        "arena_bytes": int(s["arena"]),
        "stack_bytes": stack_used,
        "stack_reserved_bytes": int(s["stack"]),
        "stack_bound_bytes": int(build.stack["worst_case_bytes"]),
        # One definition of RAM everywhere (build, bench, reports): data + bss + arena +
        # the reserved stack, i.e. what the image claims (build.ram_bytes).
        "ram_bytes": int(build.ram_bytes),
        "digits_per_s": round(digits_per_s, 1),
        "throughput_digits": streamed,
    }


def measure_cmsis_nn(board, variant: str, library: Path, report: dict, work: Path,
                     inputs: np.ndarray, expected: np.ndarray,
                     throughput_inputs: np.ndarray, cycles: bool = True) -> dict:
    """The same model on CMSIS-NN's kernels (``library``: cmsis_nn.write_cmsis_nn_library's
    folder), measured like ours; its logits are counted against TFLM's, not required to
    match: it is the anchor, not our code."""
    try:
        return measure(board, variant, library, report, work / "cmsis_nn_firmware", inputs,
                       expected, throughput_inputs, require_exact=False, cycles=cycles)
    except LenetEdgeError as exc:  # e.g. its arena does not fit a 16 KB part: say so, go on
        return _build_error(exc)


def _cmsis_nn_source(cmsis_dir: Path) -> dict:
    """Which CMSIS-NN was measured: its path and, when it says, its commit (SOURCE.md)."""
    import re

    source = cmsis_dir / "SOURCE.md"
    commit = None
    if source.is_file():
        m = re.search(r"\b[0-9a-f]{40}\b", source.read_text(encoding="utf-8", errors="replace"))
        commit = m.group(0) if m else None
    return {"path": str(cmsis_dir), "commit": commit}


def _rows(results: dict):
    for board, per_variant in results.items():
        for variant, r in per_variant.items():
            if "error" not in r:  # a speed build that does not fit the board
                yield board, variant, r


def _build_error(exc: LenetEdgeError) -> dict:
    """A build's failure as one line (e.g. the linker's region overflow)."""
    lines = str(exc).splitlines()
    overflow = [line.split("ld: ")[-1] for line in lines if "overflowed" in line or "fit in region" in line]
    return {"error": (overflow or lines)[0]}


def _speed_table(results: dict) -> Table:
    table = Table(title="guest instructions per inference (QEMU -icount shift=0), bit-exact")
    for col in ("board", "variant", "cpu", "instructions", "per MAC", "cycles (est.)",
                "cycles/instr.", "digits/s"):
        table.add_column(col, justify="left" if col in ("board", "variant", "cpu") else "right")
    for board, variant, r in _rows(results):
        est = r.get("cycles_est")
        table.add_row(board, variant, r["cpu"], f"{r['instructions']:,}",
                      f"{r['instructions_per_mac']:.2f}", f"{est:,}" if est else "-",
                      f"{est / r['instructions']:.2f}" if est else "-",
                      f"{r['digits_per_s']:.0f}")
    return table


def _ensemble_table(results: dict) -> Table | None:
    """An ensemble's cost by kind of digit (the speed table has the weighted mix)."""
    rows = [(b, v, r) for b, v, r in _rows(results) if "instructions_one_net" in r]
    if not rows:
        return None
    table = Table(title="ensembles: guest instructions per digit, the early exits' mix over "
                        "the test set = 1-net and 3-net digits' medians weighted by the 3-net "
                        "share")
    for col in ("board", "variant", "3-net share", "mix", "1 net", "3 nets",
                "MACs per digit", "MACs, 3 nets", "cycles est. 1 net", "3 nets"):
        table.add_column(col, justify="left" if col in ("board", "variant") else "right")
    for board, variant, r in rows:
        one_c, three_c = r.get("cycles_est_one_net"), r.get("cycles_est_three_nets")
        table.add_row(board, variant, f"{r['ensemble']['share_three_nets']:.3f}",
                      f"{r['instructions']:,}", f"{r['instructions_one_net']:,}",
                      f"{r['instructions_three_nets']:,}", f"{r['macs_executed']:,}",
                      f"{r['macs_executed_all_nets']:,}", f"{one_c:,}" if one_c else "-",
                      f"{three_c:,}" if three_c else "-")
    return table


def _cmsis_nn_table(results: dict) -> Table:
    """Ours beside CMSIS-NN, built and measured in the same run (--cmsis-nn)."""
    table = Table(title="generated code vs CMSIS-NN (same model, same firmware, same run; "
                        "x = CMSIS-NN / ours)")
    cols = ("board", "variant", "instr.", "CMSIS-NN", "x", "cycles est.", "CMSIS-NN", "x",
            "flash", "CMSIS-NN", "RAM", "CMSIS-NN", "CMSIS-NN = TFLM")
    for col in cols:
        table.add_column(col, justify="left" if col in ("board", "variant") else "right")
    for board, variant, r in _rows(results):
        c = r.get("cmsis_nn")
        if not c:
            continue
        if "error" in c:
            table.add_row(board, variant, f"{r['instructions']:,}", c["error"])
            continue
        ours_c, theirs_c = r.get("cycles_est"), c.get("cycles_est")
        table.add_row(board, variant, f"{r['instructions']:,}", f"{c['instructions']:,}",
                      f"{c['instructions'] / r['instructions']:.2f}x",
                      f"{ours_c:,}" if ours_c else "-", f"{theirs_c:,}" if theirs_c else "-",
                      f"{theirs_c / ours_c:.2f}x" if ours_c and theirs_c else "-",
                      f"{r['flash_bytes']:,}",
                      f"{c['flash_bytes']:,}", f"{r['ram_bytes']:,}", f"{c['ram_bytes']:,}",
                      f"{c['bit_exact_digits']}/{c['bit_exact_digits'] + c['digits_differing_from_tflm']}")
    return table


def _cmsis_nn_layer_table(results: dict) -> Table:
    table = Table(title="per layer: generated vs CMSIS-NN, guest instructions and estimated cycles")
    table.add_column("board")
    table.add_column("variant")
    table.add_column("layer")
    for col in ("instr.", "CMSIS-NN", "x", "cycles est.", "CMSIS-NN", "x"):
        table.add_column(col, justify="right")
    for board, variant, r in _rows(results):
        c = r.get("cmsis_nn")
        if not c or "error" in c:
            continue
        for layer, ours in r["instructions_per_layer"].items():
            theirs = c["instructions_per_layer"].get(layer)
            if theirs is None:
                continue
            oc = r.get("cycles_est_per_layer", {}).get(layer)
            tc = c.get("cycles_est_per_layer", {}).get(layer)
            table.add_row(board, variant, layer, f"{ours:,}", f"{theirs:,}",
                          f"{theirs / ours:.2f}x" if ours else "",
                          f"{oc:,}" if oc else "-", f"{tc:,}" if tc else "-",
                          f"{tc / oc:.2f}x" if oc and tc else "-")
    return table


def _memory_table(results: dict, tflm_arena: dict) -> Table:
    table = Table(title="flash and RAM (bytes)")
    for col in ("board", "variant", "flash", "weights", "code", "arena", "TFLM arena",
                "stack (measured)", "stack (reserved)", "RAM"):
        table.add_column(col, justify="left" if col in ("board", "variant") else "right")
    for board, variant, r in _rows(results):
        table.add_row(board, variant, f"{r['flash_bytes']:,}", f"{r['weights_bytes']:,}",
                      f"{r['code_bytes']:,}", f"{r['arena_bytes']:,}",
                      f"{tflm_arena.get(variant) or 0:,}" if tflm_arena.get(variant) else "-",
                      f"{r['stack_bytes']:,}",
                      f"{r['stack_reserved_bytes']:,}", f"{r['ram_bytes']:,}")
    return table


def _bench_inputs(model: bytes, data_dir, count: int, throughput_count: int):
    """(inputs checked against TFLM, inputs streamed for throughput): the model's own int8
    inputs for the test digits its input shape takes (MNIST, or its 16x16 zip1989 split)."""
    from lenet_edge.quantize.evaluate import input_spec, model_inputs
    from lenet_edge.train.datasets import load_test_set

    data = load_test_set(data_dir, input_spec(model)[0])
    inputs = model_inputs(model, data.images[:count + throughput_count], data.name)
    return inputs[:count], inputs[count:]


def _ensemble_inputs(ensemble, data_dir, count: int, throughput_count: int):
    """The bundled ensemble's (inputs measured, their TFLM ensemble answers, inputs
    streamed, EnsembleMix): the first ``count`` test digits and the first of each kind
    they lack; the 3-net share over the whole test set (net 1 under TFLM decides it: the
    rule's own ``confident``)."""
    from lenet_edge.ensemble import NETS, output_bytes
    from lenet_edge.quantize.ensemble import tflm_ensemble
    from lenet_edge.quantize.evaluate import input_spec, model_inputs
    from lenet_edge.quantize.tflm import TflmModel
    from lenet_edge.train.datasets import load_test_set

    net1 = ensemble.models[0]
    data = load_test_set(data_dir, input_spec(net1)[0])
    every = model_inputs(net1, data.images, data.name)
    confident = ensemble.rule.confident(TflmModel(net1).run_batch(every))
    picked = ensemble_digits(np.where(confident, 1, NETS), count)
    scores, nets_run, _ = tflm_ensemble(ensemble, every[picked])
    return (every[picked], output_bytes(scores, nets_run),
            every[count:count + throughput_count],
            EnsembleMix(nets_run, float(np.mean(~confident))))


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--boards", "boards", multiple=True, metavar="BOARD", callback=check_board_name,
              help="Boards to run in QEMU (repeatable): qemu-* boards, and real boards whose "
                   "own image runs on QEMU's model of their chip. Default: every such board.")
@click.option("--board-file", "board_files", multiple=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Also run a board described in TOML (repeatable; it needs an [emulator]).")
@click.option("--cpu", "cpus", multiple=True, type=click.Choice(CPUS),
              help="Only the boards with this core (repeatable).")
@click.option("--variants", "variants", multiple=True, type=click.Choice(FAMILY),
              help="Bundled variants (repeatable; default: every single model; "
                   f"{ENSEMBLE_VARIANT}, the ensemble of three LeNet-4s, only when named: "
                   "its instructions are the early exits' mix over the whole test set, "
                   "beside its 1-net and 3-net figures).")
@click.option("--count", default=20, show_default=True, type=click.IntRange(min=1),
              help="Digits measured one at a time per board (median reported).")
@click.option("--throughput-count", default=300, show_default=True, type=click.IntRange(min=1),
              help="Digits streamed pipelined per board for digits/s.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("bench_out"),
              show_default=True, help="Folder for exports, firmware and bench.json.")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None,
              help="MNIST folder (default: $LENET_EDGE_DATA, cache, download).")
@click.option("--cmsis-nn", "cmsis_nn", type=click.Path(path_type=Path, file_okay=False),
              default=None, metavar="DIR",
              help="A CMSIS-NN checkout: also build the same model on CMSIS-NN's kernels per "
                   "board, check it against TFLM and report both side by side.")
@click.option("--optimize", "optimize", multiple=True, type=click.Choice(("size", "speed")),
              help="Export builds to measure (repeatable; default: size, what `export` "
                   "ships). A speed build is reported as VARIANT+speed.")
@click.option("--cycles/--no-cycles", default=True, show_default=True,
              help="Estimate cycles too (QEMU plugin with the cores' timing tables; one "
                   "more short QEMU run per build).")
def bench(boards, board_files, cpus, variants, count, throughput_count, out_dir, data_dir,
          cmsis_nn, optimize, cycles):
    """Benchmark the generated firmware on every emulated Cortex-M core.

    Exports each bundled variant, builds the firmware per QEMU board, runs it under
    `qemu-system-arm -icount shift=0` and measures, over the serial link, guest
    instructions per inference (total and per layer), instructions per executed MAC,
    flash (weights, code) and RAM (arena, device-measured stack high-water mark), and
    pipelined validation throughput. Every board's logits are checked byte for byte
    against the tflite-micro runtime first. Prints a table and writes OUT/bench.json.
    With --cmsis-nn DIR the same model is also built on CMSIS-NN's kernels and measured
    the same way (its logits compared with TFLM's), side by side. --variants
    boosted-lenet4 measures the ensemble (its answers checked against the TFLM ensemble's;
    instructions per digit weighted over its early exits).
    Takes a few minutes for all boards and all variants.
    """
    from rich.progress import Progress

    from lenet_edge import flows

    from lenet_edge.firmware_templates.boards import EMULATED_BOARDS, emulated_board
    from lenet_edge.quantize.tflm import TflmModel

    from lenet_edge.firmware_templates.board_file import load_board_file

    if cmsis_nn is not None:
        from lenet_edge.cmsis_nn import check_checkout

        cmsis_nn = check_checkout(cmsis_nn)
    named = list(boards) or ([] if board_files else list(EMULATED_BOARDS))
    # A board QEMU cannot run gets its clear error from emulated_board.
    boards = [emulated_board(b, emulate=True) for b in named]
    boards += [emulated_board(load_board_file(f), emulate=True) for f in board_files]
    if cpus:
        boards = [b for b in boards if b.cpu in cpus]
        if not boards:
            raise LenetEdgeError(f"no emulated board has a {' or '.join(cpus)} core")
    variants = list(variants) or list(VARIANTS)
    cpus = tuple(sorted({b.cpu for b in boards}))  # their kernels are exported
    console = Console(width=max(Console().width, 120))
    results: dict[str, dict] = {b.name: {} for b in boards}
    tflm_arena: dict[str, int] = {}
    builds = [(v, o) for v in variants for o in (list(dict.fromkeys(optimize)) or ["size"])]
    with Progress(console=console, transient=True) as progress:
        per_board = 2 if cmsis_nn else 1
        task = progress.add_task("bench", total=len(builds) * (1 + per_board * len(boards)))
        for variant, build_kind in builds:
            key = variant if build_kind == "size" else f"{variant}+{build_kind}"
            progress.update(task, description=f"{key}: export")
            export_dir = out_dir / key / "export"
            mix = None
            if variant == ENSEMBLE_VARIANT:
                from lenet_edge.bundled import bundled_ensemble_dir
                from lenet_edge.ensemble import read_ensemble

                ensemble = read_ensemble(bundled_ensemble_dir())
                inputs, expected, stream, mix = _ensemble_inputs(ensemble, data_dir, count,
                                                                 throughput_count)
                report = flows.export_ensemble_model(ensemble, export_dir, cpus=cpus,
                                                     optimize=build_kind)
            else:
                model = bundled_model(variant).read_bytes()
                inputs, stream = _bench_inputs(model, data_dir, count, throughput_count)
                exported = flows.export_model(model, export_dir, cpus=cpus, optimize=build_kind)
                report = exported.report
                tflm = TflmModel(model)
                expected = np.array([tflm.invoke(x).reshape(-1) for x in inputs])
            tflm_arena[key] = report.get("tflm_arena_bytes")  # an ensemble's: none
            # The CMSIS-NN anchor once, for one model (it builds one .tflite).
            variant_cmsis = cmsis_nn if build_kind == "size" and mix is None else None
            if cmsis_nn and mix is not None:
                console.print(f"{key}: no CMSIS-NN build (one model's anchor, not an ensemble's)")
            if variant_cmsis:
                from lenet_edge.cmsis_nn import write_cmsis_nn_library

                cmsis_library = write_cmsis_nn_library(model, export_dir, cmsis_nn,
                                                       out_dir / variant / "cmsis_nn")
            progress.advance(task)
            for board in boards:
                progress.update(task, description=f"{key}: {board.name}")
                try:
                    results[board.name][key] = measure(board, key, export_dir, report,
                                                       out_dir / key, inputs, expected, stream,
                                                       cycles=cycles, ensemble=mix)
                except LenetEdgeError as exc:
                    if build_kind == "size":
                        raise
                    # The speed build may not fit a small part's flash: say so, go on.
                    results[board.name][key] = _build_error(exc)
                progress.advance(task)
                if variant_cmsis:
                    progress.update(task, description=f"{key}: {board.name} (CMSIS-NN)")
                    results[board.name][key]["cmsis_nn"] = measure_cmsis_nn(
                        board, key, cmsis_library, report, out_dir / key, inputs,
                        expected, stream, cycles)
                    progress.advance(task)
                elif cmsis_nn:
                    progress.advance(task)
    console.print(_speed_table(results))
    console.print(_memory_table(results, tflm_arena))
    if (ensembles := _ensemble_table(results)) is not None:
        console.print(ensembles)
    for board, per_variant in results.items():
        for key, r in per_variant.items():
            if "error" in r:
                console.print(f"{board} {key}: not built ({r['error']})")
    if cmsis_nn:
        console.print(_cmsis_nn_table(results))
        console.print(_cmsis_nn_layer_table(results))
    bench_json = {
        "command": "lenet-edge bench " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["bench"]
        else "lenet-edge bench",
        "host": platform.machine(),
        "unit": "guest instructions per inference, qemu-system-arm -icount shift=0",
        "cycles_unit": "estimated cycles per inference (lenet_edge/cycles_plugin.c: zero wait "
                       "states, no caches, single issue)" if cycles else None,
        "boards": results,
        "tflm_arena_bytes": tflm_arena,
    }
    if cmsis_nn:
        bench_json["cmsis_nn"] = _cmsis_nn_source(cmsis_nn)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "bench.json"
    path.write_text(json.dumps(bench_json, indent=2, sort_keys=True) + "\n")
    console.print(f"wrote {path}")
