"""`lenet-edge bench` on one QEMU core: the JSON other tools read has every key, and its
figures hang together (per-layer counts add up, the stack was measured, memory targets)."""

import json

from lenet_edge.cli import main


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
