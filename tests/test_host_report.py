"""report.md and the PNGs for a person: true units, the disagreements shown, memory."""

from __future__ import annotations

import json

import numpy as np

from lenet_edge.host import report as report_module
from lenet_edge.host.report import markdown, write_report


def _report(unit: str, counter_hz: int, n: int) -> dict:
    return {
        "count": n, "requested": n, "partial": False,
        "accuracy": {"device": 0.9, "tflm": 0.9, "tflite": 0.9, "float": None},
        "agreement": {"device_tflm_exact_logits": 1.0, "device_tflite_argmax": 1.0,
                      "device_float_argmax": None},
        "latency": {"unit": unit, "min": 1000, "median": 1680000, "max": 1700000,
                    **({"median_us": 10000.0} if unit == "cycles" else {})},
        "throughput_digits_per_s": 50.0,
        "info": {"board": "nucleo-f446re", "cpu": "cortex-m4", "clock_hz": 168000000,
                 "counter_hz": counter_hz, "firmware": "0.1.0", "model_hash": "ab" * 32,
                 "output_size": 10},
        "model": {"hash_matches_device": True, "float_unavailable": "TensorFlow not installed"},
        "memory": {"source": None, "flash_bytes": None, "ram_bytes": None, "sections": None,
                   "stack_worst_case_bytes": None, "stack_measured_bytes": 212,
                   "arena_bytes": 2200},
        "data": {"name": "Fashion-MNIST test set", "items": "images"},
        "per_layer": {"digits": 1, "identical_digits": 1, "first_difference": None, "layers": [
            {"layer": 0, "tensor_index": 12, "layer_name": "c1+s2 CONV_2D+MAX_POOL_2D",
             "tensor_name": "x/" * 40, "size": 1176, "count_median": 383440}]},
        "checks": {"passed": True, "failures": []},
    }


def test_silicon_reports_cycles_and_microseconds_qemu_only_instructions():
    md = markdown({**_report("cycles", 168000000, 10), "files": {}})
    assert "median 1,680,000 cycles" in md and "= 10,000.0 us at 168 MHz" in md
    assert "| 0 | c1+s2 CONV_2D+MAX_POOL_2D | 12 | 1,176 | 383,440 | 2,282.4 |" in md
    assert "median cycles | us |" in md and "x/x/" not in md
    md = markdown({**_report("guest_instructions", 1000000000, 10), "files": {}})
    assert "| 0 | c1+s2 CONV_2D+MAX_POOL_2D | 12 | 1,176 | 383,440 |\n" in md  # no us
    latency = next(line for line in md.splitlines() if line.startswith("Latency"))
    assert "median 1,680,000 guest instructions" in latency and "not cycles" in latency
    assert " us " not in md and "Hz" not in latency
    assert "10 of 10 images requested, Fashion-MNIST test set" in md
    assert "| stack, measured | 212 |" in md and "| arena | 2,200 |" in md
    assert "| float | n/a (TensorFlow not installed) |" in md


def test_disagreements_picture_only_when_the_device_disagrees(tmp_path, monkeypatch):
    n = 30
    labels = np.arange(n) % 10
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)  # RGB tiles draw too
    # All agree: no picture of a sentence, the markdown says so.
    report = _report("guest_instructions", 1000000000, n)
    write_report(tmp_path / "ok", report, images, labels, labels.copy(), labels.copy())
    assert not (tmp_path / "ok" / "disagreements.png").exists()
    saved = json.loads((tmp_path / "ok" / "report.json").read_text())
    assert saved["files"]["disagreements"] is None and saved["disagreements"]["shown"] == 0
    assert "nothing to show" in (tmp_path / "ok" / "report.md").read_text()
    # Device wrong on 3 (vs label), and differing from float on 2 others.
    device = labels.copy()
    device[[1, 5, 7]] = (device[[1, 5, 7]] + 1) % 10
    float_pred = labels.copy()  # float right everywhere (so it differs from the device on 1, 5, 7)
    float_pred[[20, 21]] = (labels[[20, 21]] + 3) % 10  # ... and wrong where the device is right
    report = _report("guest_instructions", 1000000000, n)
    write_report(tmp_path / "bad", report, images, labels, device, float_pred)
    png = tmp_path / "bad" / "disagreements.png"
    assert png.stat().st_size > 0
    assert report["disagreements"] == {"device_vs_label": 3, "device_vs_float": 5, "shown": 5}
    md = (tmp_path / "bad" / "report.md").read_text()
    assert "differs from the label on 3 images and from the float model's on 5" in md
    assert "![disagreements](disagreements.png)" in md
    # Many disagreements: capped, and the markdown says only the first ones are shown.
    monkeypatch.setattr(report_module, "MAX_TILES", 12)
    many = 50
    labels = np.zeros(many, int)
    write_report(tmp_path / "many", _report("cycles", 168000000, many),
                 np.zeros((many, 8, 8), np.uint8), labels, labels + 1, None)
    saved = json.loads((tmp_path / "many" / "report.json").read_text())
    assert saved["disagreements"]["shown"] == 12
    assert "the first 12" in (tmp_path / "many" / "report.md").read_text()
