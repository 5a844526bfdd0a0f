"""BENCHMARKS.md's firmware tables from `lenet-edge bench`'s bench.json (markdown on stdout).

    python benchmarks/bench_tables.py bench_out/bench.json main|family|layers|memory|cmsis|lcycles|linstr|speed|ensemble

Every figure comes from the JSON; nothing is typed in. A table lists the boards and variants
the JSON has (a bench of some variants or boards gives the rows it measured).
"""
import json
import sys

d = json.load(open(sys.argv[1]))
B = d["boards"]
order = ["qemu-mps2-an385", "qemu-mps2-an386", "qemu-mps2-an500", "qemu-mps2-an505", "qemu-mps3-an547",
         "nucleo-f446re", "bbc-microbit", "stm32vldiscovery"]
order = [b for b in order if b in B]
short = {"cortex-m3": "M3", "cortex-m4": "M4", "cortex-m7": "M7", "cortex-m33": "M33", "cortex-m55": "M55",
         "cortex-m0": "M0"}
LAYER_BOARDS = ["qemu-mps2-an385", "qemu-mps2-an386", "qemu-mps2-an500", "qemu-mps2-an505",
                "qemu-mps3-an547", "bbc-microbit"]


def n(v):
    return f"{v:,}"


def header(*columns, text=1):
    """A markdown table head: the first `text` columns left-aligned, the rest numbers."""
    print("| " + " | ".join(columns) + " |")
    print("| " + " | ".join("---" if i < text else "---:" for i in range(len(columns))) + " |")


def runs(variants):
    """(board, variant, figures) for every variant, then every board, where measured."""
    for v in variants:
        for b in order:
            if v in B[b]:
                yield b, v, B[b][v]


def measured(variant):
    """The boards that measured ``variant`` (of LAYER_BOARDS' or order's), in order."""
    return [b for b in order if variant in B[b]]


def by_layer(figures):
    """A per-layer dict's values in layer order (keys end in '#<op index>')."""
    return [figures[k] for k in sorted(figures, key=lambda k: int(k.split("#")[1]))]


which = sys.argv[2]
if which == "main":
    header("board", "core", "variant", "instructions", "per MAC", "cycles (est.)", "MACs executed",
           "instructions per tick", text=3)
    for b, v, r in runs(["modern", "classic"]):
        print(f"| {b} | {r['cpu']} | {v} | **{n(r['instructions'])}** | {r['instructions_per_mac']:.2f} | {n(r['cycles_est'])} | {n(r['macs_executed'])} | {r['counter_resolution']} |")
if which == "family":
    header("board", "core", "variant", "instructions", "per MAC", "MACs executed", "flash", "weights",
           "arena", "RAM", text=3)
    for b, v, r in runs(["lenet1", "lenet4"]):
        print(f"| {b} | {r['cpu']} | {v} | **{n(r['instructions'])}** | {r['instructions_per_mac']:.2f} | {n(r['macs_executed'])} | {n(r['flash_bytes'])} | {n(r['weights_bytes'])} | {n(r['arena_bytes'])} | {n(r['ram_bytes'])} |")
if which == "layers":
    header("board", "C1+S2 (117,600 MACs)", "C3+S4 (240,000)", "C5 (48,000)", "F6 (10,080)", "output (840)")
    for b in measured("modern"):
        r = B[b]["modern"]
        print(f"| {b} ({r['cpu']}) | " + " | ".join(n(x) for x in by_layer(r["instructions_per_layer"])) + " |")
if which == "memory":
    header("board", "variant", "flash", "weights", "code", "inference code", "arena", "TFLM arena",
           "stack, measured", "stack, bound", "stack, reserved", "RAM", text=2)
    for b, v, r in runs(["modern", "classic"]):
        print(f"| {b} | {v} | {n(r['flash_bytes'])} | {n(r['weights_bytes'])} | {n(r['code_bytes'])} | {n(r['inference_code_bytes'])} | {n(r['arena_bytes'])} | {n(d['tflm_arena_bytes'][v])} | {r['stack_bytes']} | {r['stack_bound_bytes']} | {r['stack_reserved_bytes']} | **{n(r['ram_bytes'])}** |")
if which == "cmsis":
    header("board", "core", "variant", "instructions", "CMSIS-NN", "x", "cycles (est.)", "CMSIS-NN", "x",
           "flash", "CMSIS-NN", "RAM", "CMSIS-NN", text=3)
    for b, v, r in runs(["modern", "classic"]):
        c = r.get("cmsis_nn") or {}
        if "error" in c or not c:
            print(f"| {b} | {r['cpu']} | {v} | {n(r['instructions'])} | does not fit (b) | | {n(r['cycles_est'])} | | | {n(r['flash_bytes'])} | | {n(r['ram_bytes'])} | |")
            continue
        print(f"| {b} | {r['cpu']} | {v} | {n(r['instructions'])} | {n(c['instructions'])} | {c['instructions']/r['instructions']:.2f} | {n(r['cycles_est'])} | {n(c['cycles_est'])} | {c['cycles_est']/r['cycles_est']:.2f} | {n(r['flash_bytes'])} | {n(c['flash_bytes'])} | {n(r['ram_bytes'])} | {n(c['ram_bytes'])} |")
if which in ("lcycles", "linstr"):
    key = "cycles_est_per_layer" if which == "lcycles" else "cycles_est_instructions_per_layer"
    header("board", "C1+S2", "C3+S4", "C5", "F6", "output")
    for b in [b for b in LAYER_BOARDS if b in measured("modern") and "cmsis_nn" in B[b]["modern"]]:
        r = B[b]["modern"]
        pairs = zip(by_layer(r[key]), by_layer(r["cmsis_nn"][key]))
        print(f"| {b} ({short[r['cpu']]}) | " + " | ".join(f"{n(ours)} / {n(theirs)}" for ours, theirs in pairs) + " |")
if which == "speed":
    header("board", "core", "build", "instructions", "per MAC", "cycles (est.)", "flash", "weights",
           "inference code", "RAM", text=3)
    for b in measured("modern"):
        for v in ["modern", "modern+speed"]:
            r = B[b].get(v) or {}
            build = "default (size)" if v == "modern" else "speed"
            if "instructions" not in r:  # the bench could not build it (its error says why)
                print(f"| {b} | | {build} | does not fit (c) | | | | | | |")
                continue
            print(f"| {b} | {r['cpu']} | {build} | **{n(r['instructions'])}** | {r['instructions_per_mac']:.2f} | {n(r['cycles_est'])} | {n(r['flash_bytes'])} | {n(r['weights_bytes'])} | {n(r['inference_code_bytes'])} | {n(r['ram_bytes'])} |")
if which == "ensemble":
    # Boosted LeNet-4 (bench --variants boosted-lenet4): its instructions per digit are the
    # 1-net and 3-net digits' medians weighted by the test set's 3-net share.
    header("board", "core", "instructions per digit", "1 net", "3 nets", "3-net share", "per MAC",
           "MACs per digit", "cycles (est.)", "flash", "weights", "arena", "RAM", "digits/s", text=2)
    for b, v, r in runs(["boosted-lenet4"]):
        cycles = n(r["cycles_est"]) if r.get("cycles_est") else "-"
        print(f"| {b} | {r['cpu']} | **{n(r['instructions'])}** | {n(r['instructions_one_net'])} | {n(r['instructions_three_nets'])} | {r['ensemble']['share_three_nets']:.3f} | {r['instructions_per_mac']:.2f} | {n(r['macs_executed'])} | {cycles} | {n(r['flash_bytes'])} | {n(r['weights_bytes'])} | {n(r['arena_bytes'])} | {n(r['ram_bytes'])} | {r['digits_per_s']:.0f} |")
