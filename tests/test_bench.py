"""`lenet-edge bench` on one QEMU core: the JSON other tools read has every key, and its
figures hang together (per-layer counts add up, the stack was measured, memory targets);
Boosted LeNet-4 measured by the same routine, its early exits' mix made explicit; the
BENCHMARKS.md tables (benchmarks/bench_tables.py) read both kinds of entry."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lenet_edge.cli import main

TABLES = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_tables.py"
TABLE_KINDS = ("main", "family", "layers", "memory", "cmsis", "lcycles", "linstr", "speed",
               "ensemble")


def _tables(bench_json: Path) -> dict[str, str]:
    """Every table bench_tables.py prints from ``bench_json`` (each must run cleanly)."""
    out = {}
    for kind in TABLE_KINDS:
        proc = subprocess.run([sys.executable, str(TABLES), str(bench_json), kind],
                              capture_output=True, text=True)
        assert proc.returncode == 0, f"{kind}: {proc.stderr}"
        out[kind] = proc.stdout
    return out


def test_bench_one_board(tmp_path):
    out = tmp_path / "bench"
    rc = main(["bench", "--boards", "qemu-mps2-an385", "--variants", "classic", "--count", "3",
               "--throughput-count", "20", "--out", str(out)])
    assert rc == 0
    bench = json.loads((out / "bench.json").read_text())
    r = bench["boards"]["qemu-mps2-an385"]["classic"]
    for key in ("instructions", "instructions_per_layer", "macs_executed", "flash_bytes",
                "arena_bytes", "stack_bytes"):
        assert key in r
    assert r["cpu"] == "cortex-m3" and r["counter_unit"] == "guest_instructions"
    # The classic C3 connection table is skipped, not computed.
    assert r["macs_executed"] < r["macs_dense"]
    layers = r["instructions_per_layer"]
    assert len(layers) >= 4
    # Per-layer counts are measured separately; together they are the inference, give or
    # take the counter's resolution per layer and the calls between layers.
    assert abs(sum(layers.values()) - r["instructions"]) < 0.03 * r["instructions"]
    # Measured high-water mark <= static bound < reserve; RAM is what build reports.
    assert 0 < r["stack_bytes"] <= r["stack_bound_bytes"] < r["stack_reserved_bytes"]
    assert r["ram_bytes"] <= 4096
    assert r["arena_bytes"] <= 2560 < bench["tflm_arena_bytes"]["classic"]
    assert r["flash_bytes"] > r["weights_bytes"] > 0
    assert r["digits_per_s"] > 0 and r["throughput_digits"] == 20
    tables = _tables(out / "bench.json")  # a bench of one single model: no ensemble row
    assert "| qemu-mps2-an385 | cortex-m3 | classic | **" in tables["main"]
    assert tables["ensemble"].count("\n") == 2  # its header only


@pytest.mark.qemu
@pytest.mark.arm
def test_bench_of_the_ensemble(tmp_path, mnist_test):
    """`bench --variants boosted-lenet4`: the ensemble's firmware answers the TFLM
    ensemble's bytes on the digits measured (both kinds among them), its instructions per
    digit lie between its 1-net and 3-net medians, weighted by the test set's 3-net share,
    and its MACs and per-layer figures come from the export's per-net report."""
    from lenet_edge.bundled import bundled_ensemble_dir
    from lenet_edge.ensemble import read_ensemble
    from lenet_edge.quantize.ensemble import tflm_ensemble
    from lenet_edge.quantize.evaluate import model_inputs

    out = tmp_path / "bench"
    assert main(["bench", "--boards", "qemu-mps2-an386", "--variants", "boosted-lenet4",
                 "--count", "3", "--throughput-count", "10", "--no-cycles",
                 "--out", str(out)]) == 0
    bench = json.loads((out / "bench.json").read_text())
    r = bench["boards"]["qemu-mps2-an386"]["boosted-lenet4"]
    ensemble = read_ensemble(bundled_ensemble_dir())
    # The digits measured: the first 3, plus the first of each kind they lack (computed
    # here from the TFLM ensemble, not read from the bench).
    nets = tflm_ensemble(ensemble, model_inputs(ensemble.models[0], mnist_test[0][:50]))[1]
    kinds = list(nets[:3]) + [k for k in (1, 3) if k not in nets[:3]]
    assert r["bit_exact_digits"] == len(kinds) and r["digits_differing_from_tflm"] == 0
    mix = r["ensemble"]
    assert (mix["digits_one_net"], mix["digits_three_nets"]) == (kinds.count(1), kinds.count(3))
    # The 3-net share over the whole test set: what quantizing the ensemble measured too.
    assert mix["nets_per_digit"] == ensemble.meta["int8_tflm"]["nets_per_digit"]
    share = mix["share_three_nets"]
    one, three = r["instructions_one_net"], r["instructions_three_nets"]
    assert 0 < one < r["instructions"] < three and 2.5 * one < three < 3.5 * one
    assert abs(r["instructions"] - ((1 - share) * one + share * three)) <= 1e-4 * three + 1
    assert r["instructions_min"] <= one and r["instructions_max"] >= three
    report = json.loads((out / "boosted-lenet4" / "export" / "export_report.json").read_text())
    macs = [n["macs_executed"] for n in report["nets"]]
    assert abs(r["macs_executed"] - (macs[0] + share * (macs[1] + macs[2]))) <= 1e-4 * sum(macs) + 1
    assert r["macs_executed_all_nets"] == sum(macs)
    assert r["instructions_per_mac"] == round(r["instructions"] / r["macs_executed"], 3)
    # Per layer: a 3-net digit's TRACE, named by net from the per-net traced lists.
    layers = r["instructions_per_layer"]
    assert list(layers) == [f"net{k + 1}#{t['index']}" for k, n in enumerate(report["nets"])
                            for t in n["traced"]]
    assert all(v > 0 for v in layers.values())
    assert abs(sum(layers.values()) - three) < 0.03 * three
    assert r["arena_bytes"] == report["arena_bytes"] and r["flash_bytes"] > r["weights_bytes"] > 0
    assert 0 < r["stack_bytes"] <= r["stack_bound_bytes"] and r["ram_bytes"] > r["arena_bytes"]
    assert r["digits_per_s"] > 0 and r["throughput_digits"] == 10
    assert bench["tflm_arena_bytes"]["boosted-lenet4"] is None
    tables = _tables(out / "bench.json")
    assert f"| qemu-mps2-an386 | cortex-m4 | **{r['instructions']:,}** | {one:,} | {three:,} |" \
        in tables["ensemble"]
    assert "boosted-lenet4" not in tables["main"] + tables["family"] + tables["memory"]
