"""`lenet-edge validate` on Boosted LeNet-4: the ensemble firmware built and run in QEMU,
its 41-byte answers streamed over the real serial path and checked against the TFLM
ensemble (quantize/ensemble.py's tflm_ensemble, the rule of lenet_edge/ensemble.py), every
traced tensor of the first digits against TFLM's tensor of its net (--per-layer), a device
whose rule differs caught with its first mismatch and its first wrong exit, a net swapped
for another caught by the per-layer check alone, and bad ensembles refused."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from lenet_edge.bundled import ASSETS
from lenet_edge.cli import main
from lenet_edge.ensemble import parse_output_bytes, read_ensemble

BUNDLED = ASSETS / "boosted_lenet4"
QEMU_BOARD = "qemu-mps2-an386"
COUNT = 150
PER_LAYER = 4  # the first digits traced: early exits and full runs (the test checks both)


@pytest.fixture(scope="module")
def tflm_answers(mnist_test):
    """What the device must answer for the first COUNT digits, computed here from the TFLM
    ensemble (not read from validate's report): (41-byte rows, labels)."""
    from lenet_edge.ensemble import output_bytes
    from lenet_edge.quantize.ensemble import tflm_ensemble
    from lenet_edge.quantize.evaluate import model_inputs

    ensemble = read_ensemble(BUNDLED)
    inputs = model_inputs(ensemble.models[0], mnist_test[0][:COUNT])
    scores, nets, _ = tflm_ensemble(ensemble, inputs)
    return output_bytes(scores, nets), mnist_test[1][:COUNT].astype(np.int64)


@pytest.fixture(scope="module")
def validated(tmp_path_factory):
    """`validate --board qemu-... --model <bundled ensemble folder>`: exports the ensemble,
    builds its firmware, runs it in two QEMUs sharing the COUNT digits, then traces the
    first PER_LAYER digits on one of them."""
    out = tmp_path_factory.mktemp("validate-ensemble") / "report"
    code = main(["validate", "--board", QEMU_BOARD, "--model", str(BUNDLED), "--count",
                 str(COUNT), "--report", str(out), "--per-layer", str(PER_LAYER), "--jobs", "2"])
    return code, out


@pytest.mark.qemu
@pytest.mark.arm
def test_validate_ensemble_on_qemu_equals_the_tflm_ensemble(validated, tflm_answers):
    from lenet_edge.host.rejection import rejection_summary
    from lenet_edge.optional import have_tensorflow

    code, out = validated
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    expected, labels = tflm_answers
    scores, nets = parse_output_bytes(expected)
    assert report["count"] == COUNT and report["partial"] is False
    assert sorted(d["count"] > 0 for d in report["devices"]) == [True, True]
    assert sum(d["count"] for d in report["devices"]) == COUNT
    assert report["info"]["output_size"] == 41
    assert report["model"]["sha256"] == read_ensemble(BUNDLED).hash
    assert report["agreement"]["device_tflm_exact_logits"] == 1.0
    assert report["mismatch"]["count"] == 0 and report["ensemble"]["first_mismatch"] is None
    # The device's own figures (classes from its scores, nets from its last byte) are the
    # TFLM ensemble's, as computed here.
    accuracy = float(np.mean(scores.argmax(axis=1) == labels))
    assert report["accuracy"]["device"] == report["accuracy"]["tflm"] == accuracy
    runs = report["ensemble"]["nets_run"]
    want = {"1": int(np.sum(nets == 1)), "3": int(np.sum(nets == 3))}
    assert runs["device_histogram"] == runs["tflm_histogram"] == want
    assert want["1"] > 0 and want["3"] > 0  # both paths taken on the device
    assert runs["device_mean"] == round(float(nets.mean()), 3)
    assert report["rejection"]["rejection_percent_for_error_percent"] == \
        rejection_summary(scores, labels)["rejection_percent_for_error_percent"]
    by = report["ensemble"]["count_by_nets_run"]
    assert by["unit"] == "guest_instructions"
    assert by["3"]["median"] > 2 * by["1"]["median"] > 0  # three nets cost about three times one
    assert by["1"]["digits"] + by["3"]["digits"] == COUNT
    if have_tensorflow():  # the float ensemble: three .keras nets, its own early exit
        assert report["accuracy"]["float"] is not None and runs["float_mean"] is not None
    md = (out / "report.md").read_text()
    assert "PASSED" in md and "## Ensemble" in md and "TFLM ensemble" in md
    assert "float_threshold" in md
    for name in ("confusion_matrix.png", "error_rejection.png"):
        assert (out / name).stat().st_size > 0


@pytest.mark.qemu
@pytest.mark.arm
def test_per_layer_checks_each_net_and_the_early_exits(validated, tflm_answers):
    """--per-layer on the ensemble: every layer the export says the firmware traces (net 1's,
    then nets 2 and 3's) named with its net, equal to TFLM's tensor of that net; on the
    early-exit digits nets 2 and 3's layers are 'not run', on the others run."""
    code, out = validated
    report = json.loads((out / "report.json").read_text())
    nets = parse_output_bytes(tflm_answers[0][:PER_LAYER])[1]
    assert set(nets.tolist()) == {1, 3}  # both kinds among the digits traced
    export = json.loads((out / "export" / "export_report.json").read_text())
    want = [(k + 1, t["index"]) for k, net in enumerate(export["nets"]) for t in net["traced"]]
    pl = report["per_layer"]
    assert code == 0 and pl["first_difference"] is None
    assert pl["digits"] == pl["identical_digits"] == PER_LAYER
    assert [(m["net"], m["tensor_index"]) for m in pl["layers"]] == want
    assert {m["net"] for m in pl["layers"]} == {1, 2, 3}
    for m in pl["layers"]:
        ran = PER_LAYER if m["net"] == 1 else int(np.sum(nets == 3))
        assert m["digits_run"] == ran and m["count_median"] > 0
        assert m["layer_name"].startswith(f"net {m['net']} ")
    assert pl["ensemble"]["tflm_nets_run"] == pl["ensemble"]["device_nets_traced"] \
        == nets.tolist()
    assert pl["ensemble"]["layers_from"].endswith("export_report.json")
    md = (out / "report.md").read_text()
    assert "## Per-layer check (4 digits)" in md and "| net 2 " in md
    assert "every early exit the TFLM ensemble's" in md


@pytest.mark.qemu
@pytest.mark.arm
def test_a_device_whose_rule_differs_is_caught_with_the_first_mismatch(
        validated, tflm_answers, tmp_path, capsys):
    """The bundled ensemble's firmware (T = 60) at --port, validated with --force against
    the same nets with T = 200: digits net 1 is sure of (margin 60..199) run one net on the
    device and three in the reference; exit 1 and the first such digit named, by the scores
    and by the per-layer check (nets 2 and 3's layers not run where TFLM runs them)."""
    from lenet_edge.firmware_templates.qemu import start_qemu
    from lenet_edge.flows import build

    _, out = validated
    export = out / "export"
    other = tmp_path / "other"
    other.mkdir()
    for p in BUNDLED.glob("*_int8.tflite"):
        shutil.copyfile(p, other / p.name)
    meta = json.loads((BUNDLED / "ensemble.json").read_text())
    meta["threshold"] = 200
    (other / "ensemble.json").write_text(json.dumps(meta))
    elf = build(QEMU_BOARD, export).elf  # the fixture's build: nothing to compile
    with start_qemu(QEMU_BOARD, elf) as qemu:
        report_dir = tmp_path / "report"
        assert main(["validate", "--port", qemu.url, "--export", str(other), "--count", "40",
                     "--report", str(report_dir)]) == 2  # another model: refused
        assert "--force" in capsys.readouterr().err
        assert main(["validate", "--port", qemu.url, "--export", str(other), "--count", "40",
                     "--report", str(report_dir), "--force", "--per-layer", "3"]) == 1
        # One LeNet-5 forced onto the ensemble's device: its answers cannot be compared.
        one = ASSETS / "lenet4" / "lenet5_int8.tflite"
        assert main(["validate", "--port", qemu.url, "--export", str(one), "--count", "5",
                     "--report", str(tmp_path / "one"), "--force"]) == 2
        err = capsys.readouterr().err
        assert "error: the device answers 41 bytes per input, the model being validated 10" \
            in err and "Traceback" not in err
    report = json.loads((report_dir / "report.json").read_text())
    expected, _ = tflm_answers
    device_scores, device_nets = parse_output_bytes(expected[:40])
    first = report["ensemble"]["first_mismatch"]
    assert first is not None and report["mismatch"]["count"] > 0
    i = first["index"]
    assert i == report["mismatch"]["first"]
    assert first["device_nets_run"] == int(device_nets[i]) == 1 and first["tflm_nets_run"] == 3
    assert first["device_scores"] == device_scores[i].tolist()
    assert "scores differ from the TFLM ensemble's" in " ".join(report["checks"]["failures"])
    assert "First mismatch" in (report_dir / "report.md").read_text()
    # The per-layer check sees the same wrong exit on the first such digit it traces: the
    # device answers net 2's first layer 'not run', TFLM (T = 200) runs all three nets.
    assert i < 3
    d = report["per_layer"]["first_difference"]
    net1_layers = sum(m["net"] == 1 for m in report["per_layer"]["layers"])
    assert (d["digit"], d["layer"], d["net"]) == (i, net1_layers, 2)
    assert d["element"] is None and d["device"] == "not run" and d["tflm_nets_run"] == 3
    # No export beside this folder: the layers came from the code generator itself.
    assert "code generator" in report["per_layer"]["ensemble"]["layers_from"]
    assert any("did not run it, the TFLM ensemble runs 3 nets" in f
               for f in report["checks"]["failures"])


def _permuted(folder, order):
    """The ensemble in ``folder`` with its nets in another order (and their scales, zero
    points, weights and hashes with them): the same sum, another ensemble."""
    meta = json.loads((BUNDLED / "ensemble.json").read_text())
    for key in ("nets", "net_sha256", "output_scales", "zero_points", "weights"):
        meta[key] = [meta[key][k] for k in order]
    folder.mkdir()
    for p in BUNDLED.glob("*_int8.tflite"):
        shutil.copyfile(p, folder / p.name)
    (folder / "ensemble.json").write_text(json.dumps(meta))
    return folder


@pytest.mark.qemu
@pytest.mark.arm
def test_a_net_swapped_for_another_is_caught_by_the_per_layer_check(validated, tflm_answers,
                                                                   tmp_path):
    """Nets 2 and 3 swapped (with their weights): the scores are the same sums, so every
    INFER answer equals this ensemble's TFLM answer; only the per-layer check sees that the
    device's net 2 is not this ensemble's net 2, on the first digit that runs it."""
    from lenet_edge.firmware_templates.qemu import start_qemu
    from lenet_edge.flows import build

    _, out = validated
    swapped = _permuted(tmp_path / "swapped", (0, 2, 1))
    elf = build(QEMU_BOARD, out / "export").elf  # the fixture's build: nothing to compile
    with start_qemu(QEMU_BOARD, elf) as qemu:
        assert main(["validate", "--port", qemu.url, "--export", str(swapped), "--count",
                     str(PER_LAYER), "--per-layer", str(PER_LAYER), "--report",
                     str(tmp_path / "report"), "--force"]) == 1
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["agreement"]["device_tflm_exact_logits"] == 1.0  # the answers cannot tell
    nets = parse_output_bytes(tflm_answers[0][:PER_LAYER])[1]
    d = report["per_layer"]["first_difference"]
    net1_layers = sum(m["net"] == 1 for m in report["per_layer"]["layers"])
    assert (d["digit"], d["layer"], d["net"]) == (int(np.flatnonzero(nets == 3)[0]),
                                                  net1_layers, 2)
    assert d["element"] is not None and d["device"] != d["tflm"] and d["differing_elements"] > 0
    assert report["per_layer"]["identical_digits"] == int(np.sum(nets == 1))
    failures = report["checks"]["failures"]
    assert len(failures) == 1 and failures[0].startswith("per-layer: first difference at layer")


def test_an_ensemble_missing_a_net_is_one_error_before_building(tmp_path, capsys):
    bad = tmp_path / "bad"
    shutil.copytree(BUNDLED, bad)
    (bad / "net2_int8.tflite").unlink()
    assert main(["validate", "--board", QEMU_BOARD, "--model", str(bad), "--count", "5",
                 "--report", str(tmp_path / "r")]) == 2
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "net2_int8.tflite missing" in errors[0]
    assert "Traceback" not in captured.err
    assert "building" not in captured.err + captured.out


def test_an_ensemble_export_without_its_ensemble_folder_is_refused(tmp_path, capsys):
    """An `export --ensemble` folder whose ensemble/ copy is gone: no references to check
    the device against, said before any port is opened."""
    export = tmp_path / "export"
    (export / "c").mkdir(parents=True)
    (export / "c" / "boosted_model.h").write_text("/* */\n")
    (export / "c" / "ensemble.json").write_text(json.dumps({"name": "boosted"}))
    assert main(["validate", "--port", "socket://127.0.0.1:9", "--export", str(export),
                 "--report", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "is an ensemble export without ensemble/ensemble.json" in err
    assert "Traceback" not in err
