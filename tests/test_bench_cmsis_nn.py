"""`lenet-edge bench --cmsis-nn DIR`: the same model built on CMSIS-NN's kernels, run in QEMU
through the same firmware and protocol, checked against TFLM, reported beside ours; and
the estimated cycles (QEMU plugin) of both builds."""

import json
import os
from pathlib import Path

import pytest

from lenet_edge.cli import main

REPO = Path(__file__).resolve().parents[1]


def _cmsis_nn_dir() -> Path:
    # CI: the verified checkout beside the clone; LENET_EDGE_CMSIS_NN overrides (worktrees).
    env = os.environ.get("LENET_EDGE_CMSIS_NN")
    return Path(env) if env else REPO.parent / "shared" / "anchors" / "CMSIS-NN"


def test_bench_cmsis_nn_side_by_side(tmp_path):
    cmsis = _cmsis_nn_dir()
    if not (cmsis / "Include" / "arm_nnfunctions.h").is_file():
        pytest.skip(f"no CMSIS-NN checkout at {cmsis} (set LENET_EDGE_CMSIS_NN)")
    out = tmp_path / "bench"
    rc = main(["bench", "--boards", "qemu-mps2-an386", "--boards", "qemu-mps3-an547",
               "--variants", "modern", "--count", "3", "--throughput-count", "5",
               "--cmsis-nn", str(cmsis), "--out", str(out)])
    assert rc == 0
    bench = json.loads((out / "bench.json").read_text())
    assert bench["cmsis_nn"]["path"] == str(cmsis.resolve())
    for board in ("qemu-mps2-an386", "qemu-mps3-an547"):
        ours = bench["boards"][board]["modern"]
        theirs = ours["cmsis_nn"]
        assert "error" not in theirs, theirs
        # CMSIS-NN's kernels give TFLM's logits on every digit measured.
        assert theirs["digits_differing_from_tflm"] == 0 and theirs["bit_exact_digits"] == 3
        assert theirs["cpu"] == ours["cpu"]
        # Same layers, measured the same way; the per-layer counts add up to the whole.
        assert set(theirs["instructions_per_layer"]) == set(ours["instructions_per_layer"])
        total = sum(theirs["instructions_per_layer"].values())
        assert abs(total - theirs["instructions"]) < 0.03 * theirs["instructions"]
        # The anchor is a different build: its own flash and RAM, CMSIS-NN's code inside.
        assert theirs["flash_bytes"] > theirs["weights_bytes"] > 0
        assert theirs["flash_bytes"] != ours["flash_bytes"]
        assert theirs["arena_bytes"] > ours["arena_bytes"]
        # Estimated cycles (the TCG plugin) for both builds: every instruction costs at
        # least a cycle, the plugin saw the instructions the device counted, and the
        # per-layer estimates add up to the whole.
        for r in (ours, theirs):
            assert r["cycles_est"] >= r["cycles_est_instructions"]
            assert abs(r["cycles_est_instructions"] - r["instructions"]) < 0.01 * r["instructions"]
            layers = r["cycles_est_per_layer"]
            assert list(layers) == list(r["instructions_per_layer"])
            assert all(layers[k] >= r["cycles_est_instructions_per_layer"][k] for k in layers)
            assert abs(sum(layers.values()) - r["cycles_est"]) < 0.03 * r["cycles_est"]


def test_bench_cmsis_nn_bad_dir(tmp_path, capsys):
    rc = main(["bench", "--boards", "qemu-mps2-an386", "--cmsis-nn", str(tmp_path),
               "--out", str(tmp_path / "b")])
    assert rc != 0
    err = capsys.readouterr().err
    assert "error: --cmsis-nn" in err and "not a CMSIS-NN checkout" in err
