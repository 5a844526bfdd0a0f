"""Each LeNet family member beyond the two LeNet-5s (lenet1, lenet4, zip1989 and
zip1989-modern, and classic-1998's 1998 details) validated on an emulated Cortex-M: the
firmware's logits byte-identical to TFLM on real MNIST digits (for the 16x16 zip1989
nets, the digits of their split, which validate picks by the model's input shape)."""

from __future__ import annotations

import json

import pytest

from lenet_edge.cli import main
from tests.host_fixtures import QEMU_BOARD, lenet_model_files, mnist_test  # noqa: F401

pytestmark = [pytest.mark.qemu, pytest.mark.arm]


@pytest.mark.parametrize("variant", ["lenet1", "lenet4", "zip1989", "zip1989-modern",
                                     "classic-1998"])
def test_validate_on_qemu_is_bit_exact_with_tflm(variant, lenet_model_files, tmp_path):
    from lenet_edge.codegen.export import export

    model_dir = tmp_path / "export"
    export(lenet_model_files[variant].read_bytes(), model_dir, measure_tflm=False,
           measure_code=False)
    out = tmp_path / "report"
    assert main(["validate", "--board", QEMU_BOARD, "--export", str(model_dir),
                 "--count", "200", "--report", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["count"] == 200 and report["partial"] is False
    assert report["agreement"]["device_tflm_exact_logits"] == 1.0
    assert report["accuracy"]["device"] == report["accuracy"]["tflm"]
    assert report["info"]["board"] == QEMU_BOARD
    expected_set = "zip1989" if variant.startswith("zip1989") else "MNIST test set"
    assert report["data"]["name"].startswith(expected_set)
    # The error-rejection curve from the device's logits: figures, PNG, report.md section.
    rejection = report["rejection"]
    error = 100 * (1 - report["accuracy"]["device"])
    assert rejection["error_percent_at_rejection_percent"]["0"] == round(error, 2)
    needed = rejection["rejection_percent_for_error_percent"]
    assert 0 <= needed["1"] <= needed["0.5"] <= 100
    at = list(rejection["error_percent_at_rejection_percent"].values())
    assert at[-1] <= at[0]  # rejecting the least confident 10 % lowers the error
    assert (out / "error_rejection.png").stat().st_size > 0
    assert report["files"]["error_rejection"] == "error_rejection.png"
    assert "## Error against rejection" in (out / "report.md").read_text()


def test_zoo_table_and_json(tmp_path):
    import numpy as np

    from lenet_edge.host.rejection import rejection_for_error

    out = tmp_path / "zoo"
    # Two cores (M4 with DSP kernels, M0 without), LeNet-1 and the 16x16 zip1989 net.
    assert main(["zoo", "--variants", "lenet1", "--variants", "zip1989", "--board", QEMU_BOARD,
                 "--board", "bbc-microbit", "--count", "3", "--limit", "1000",
                 "--out", str(out)]) == 0
    zoo = json.loads((out / "zoo.json").read_text())
    assert zoo["board"] == QEMU_BOARD and set(zoo["variants"]) == {"lenet1", "zip1989"}
    assert zoo["boards"] == {QEMU_BOARD: "cortex-m4", "bbc-microbit": "cortex-m0"}
    assert (out / "zoo_pareto.png").stat().st_size > 0
    # zoo.md: the same figures as a Markdown table, a row per variant, a column per core.
    table = (out / "zoo.md").read_text().splitlines()
    assert table[0].endswith("| M4 | M0 |") and len(table) == 4
    assert table[2].startswith("| lenet1 | 1.7 |") and "(about 3.7)" in table[2]
    assert f"| {zoo['variants']['zip1989']['boards']['bbc-microbit']['instructions']:,} |" in table[3]
    one, zip89 = zoo["variants"]["lenet1"], zoo["variants"]["zip1989"]
    assert one["paper"]["error"] == 1.7 and zip89["paper"]["reproduction_error"] == 4.09
    assert one["parameters"] == 2546 and zip89["parameters"] == 9760
    for row in (one, zip89):
        assert row["device_bit_exact_digits"] == 3 and row["test_digits"] == 1000
        assert set(row["boards"]) == set(zoo["boards"])
        assert all(b["bit_exact_digits"] == 3 and b["instructions"] > 0
                   for b in row["boards"].values())
        assert row["instructions"] == row["boards"][QEMU_BOARD]["instructions"]
        assert 0 < row["int8_tflm_error"] < 10
        # Rejection: more than the error's excess over 0.5 % needs, at most everything.
        assert row["int8_tflm_error"] - 0.5 <= row["rejection_for_0.5_percent_error"] <= 100
    # Each on its own test set: zip1989 on its 16x16 split drawn from MNIST.
    assert one["test_set"] == "MNIST test set" and zip89["test_set"].startswith("zip1989")
    # The connection table's zeros are skipped: executed < dense multiply-adds.
    assert one["macs_executed"] == 91_520 < one["macs_dense"] == 136_320
    # zip1989: the paper's 64,660 connections less the 1,000 biases (an ADD, not MACs).
    assert zip89["macs_executed"] == 63_660 < zip89["macs_dense"]
    logits = np.array([[9, 0], [0, 5], [3, 2], [0, 8]], dtype=np.int8)
    logits = np.pad(logits, ((0, 0), (0, 8)), constant_values=-128)
    # Margins 9, 5, 1, 8; digits 2 and 3 wrong. Digit 3 is confidently wrong (margin 8, the
    # second most confident), so only digit 0 can be kept: 75 % rejected.
    truth = np.array([0, 1, 1, 0])
    assert rejection_for_error(logits, truth) == 75.0
    truth = np.array([0, 1, 1, 1])  # only digit 2 (the least confident) wrong
    assert rejection_for_error(logits, truth) == 25.0
    assert rejection_for_error(logits[:2], truth[:2]) == 0.0
