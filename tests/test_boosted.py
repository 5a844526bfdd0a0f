"""Boosted LeNet-4: the ensemble rule (lenet_edge/ensemble.py) in Python, its C twin
(codegen/ensemble.py), TFLM, and the firmware on QEMU agree digit by digit; training works
end to end on a tiny subset."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lenet_edge.bundled import ASSETS
from lenet_edge.ensemble import (OUTPUT_BYTES, Rule, choose_threshold, margin, output_bytes,
                                 parse_output_bytes, read_ensemble, weights_for)
from lenet_edge.errors import LenetEdgeError

BUNDLED = ASSETS / "boosted_lenet4"


def test_weights_and_margin_and_threshold():
    assert weights_for([0.1, 0.2, 0.05]) == [32768, 65536, 16384]
    assert weights_for([0.15, 0.15, 0.1]) == [65536, 65536, 43691]  # 43690.67 rounds up
    q = np.array([[5, 9, 9, 0], [-128, 3, 1, 0]], np.int8)
    assert margin(q).tolist() == [0, 2]  # the largest value twice: no margin
    m = np.array([[0, 1], [0, 2], [0, 3], [0, 4]])  # margins 1..4
    # T = 3: half the digits below it run all three nets: 1 + 2 * 0.5 = 2 nets.
    assert choose_threshold(m, 2.0) == 3
    assert choose_threshold(m, 3.0) == 5  # above every margin: always three


def test_rule_sums_and_exits_early():
    rule = Rule((65536, 32768, 16384), (-10, 0, 5), threshold=4)
    net1 = np.array([[10, 0, 0, 0, 0, 0, 0, 0, 0, 5], [10, 8] + [0] * 8], np.int8)
    net2 = np.full((2, 10), 7, np.int8)
    net3 = np.full((2, 10), -3, np.int8)
    scores, nets = rule.scores([net1, net2, net3])
    assert nets.tolist() == [1, 3]
    assert scores[0].tolist() == (65536 * (net1[0].astype(int) + 10)).tolist()
    assert scores[1, 0] == 65536 * 20 + 32768 * 7 + 16384 * (-8)
    raw = output_bytes(scores, nets)
    assert raw.shape == (2, OUTPUT_BYTES) and raw.dtype == np.int8
    back, back_nets = parse_output_bytes(raw)
    assert (back == scores).all() and back_nets.tolist() == [1, 3]


def test_bundled_ensemble_is_checked(tmp_path):
    ensemble = read_ensemble(BUNDLED)
    assert ensemble.rule.weights == tuple(weights_for(ensemble.scales))
    assert max(ensemble.rule.weights) == 65536 and len(ensemble.hash) == 64
    bad = tmp_path / "bad"
    bad.mkdir()
    for p in BUNDLED.glob("*_int8.tflite"):
        (bad / p.name).write_bytes(p.read_bytes())
    (bad / "ensemble.json").write_text((BUNDLED / "ensemble.json").read_text())
    (bad / "net2_int8.tflite").write_bytes(b"\0" * 16)
    with pytest.raises(LenetEdgeError, match="not the net .* was made with"):
        read_ensemble(bad)
    with pytest.raises(LenetEdgeError, match="holds no ensemble.json"):
        read_ensemble(tmp_path)


@pytest.fixture(scope="module")
def ensemble_export(tmp_path_factory):
    from lenet_edge.flows import export_ensemble_model

    out = tmp_path_factory.mktemp("boosted") / "export"
    report = export_ensemble_model(BUNDLED, out, board="qemu-mps2-an386")
    return out, report


@pytest.fixture(scope="module")
def tflm_reference(mnist_test):
    """The TFLM ensemble (three TflmModel runs + the Python rule) on the first 2,000 digits."""
    from lenet_edge.quantize.ensemble import tflm_ensemble
    from lenet_edge.quantize.evaluate import model_inputs

    ensemble = read_ensemble(BUNDLED)
    inputs = model_inputs(ensemble.models[0], mnist_test[0][:2000])
    scores, nets, _ = tflm_ensemble(ensemble, inputs)
    return inputs, output_bytes(scores, nets)


@pytest.fixture(scope="module")
def sanitized_runner(ensemble_export, tmp_path_factory):
    from lenet_edge.codegen.ensemble import build_host_runner

    out, _ = ensemble_export
    return build_host_runner(out / "c", tmp_path_factory.mktemp("asan") / "runner", sanitize=True)


def _tflm_tensors(traced_layers, x):
    """What each traced layer must hold for input x: TFLM's tensor of that index in that
    net's .tflite (``traced_layers``: (net 1..3, tensor index) per layer)."""
    from lenet_edge.quantize.tflm import TflmModel

    models = read_ensemble(BUNDLED).models
    refs = {}
    for net in sorted({net for net, _ in traced_layers}):
        refs[net] = TflmModel(models[net - 1], preserve_all_tensors=True)
        refs[net].invoke(x)
    return [refs[net].tensor(t).reshape(-1) for net, t in traced_layers]


def _traced_layers(report):
    return [(k + 1, t["index"]) for k, net in enumerate(report["nets"]) for t in net["traced"]]


def test_c_ensemble_equals_tflm_ensemble(ensemble_export, tflm_reference, sanitized_runner, tmp_path):
    from lenet_edge.codegen.ensemble import build_host_runner, run_host_runner

    out, report = ensemble_export
    c_dir = out / "c"
    assert report["kind"] == "ensemble" and len(report["nets"]) == 3
    header = (c_dir / "boosted_model.h").read_text()
    assert f'#define BOOSTED_MODEL_HASH "{read_ensemble(BUNDLED).hash}"' in header
    assert f"#define BOOSTED_ARENA_BYTES {report['arena_bytes']}\n" in header
    inputs, expected = tflm_reference
    # The nets share one arena (each net's .c declares it extern): its size is the largest
    # plan and the input, which no net may overwrite, as nets 2 and 3 read it after net 1
    # (the runner places the input there, checks it is unchanged after each inference, and
    # ASan checks every access against the array's bounds).
    plans = [n["arena_bytes"] for n in report["nets"]]
    assert report["arena_bytes"] <= max(plans) + inputs.shape[1] < sum(plans)
    assert report["arena_bytes_if_separate"] == sum(plans) + inputs.shape[1]
    for net in report["nets"]:
        source = (c_dir / f"{net['name']}_model.c").read_text()
        assert "extern int32_t boosted_arena_words[];" in source
        assert f"static int32_t {net['name']}_arena_words" not in source
    # Every digit with the plain build; the first 300 under ASan + UBSan.
    got = run_host_runner(build_host_runner(c_dir, tmp_path / "runner"), inputs)
    assert (got == expected).all()
    nets = parse_output_bytes(got)[1]
    assert set(nets.tolist()) == {1, 3}  # both paths taken
    assert (run_host_runner(sanitized_runner, inputs[:300]) == expected[:300]).all()


def test_c_ensemble_traces_the_nets_it_runs(ensemble_export, tflm_reference, sanitized_runner):
    """boosted_invoke_traced (under ASan + UBSan): every op output of the nets run, in
    order (net 1's, then nets 2 and 3's unless net 1 exits early), each equal to TFLM's
    tensor of that net; the output equals boosted_invoke's."""
    from lenet_edge.codegen.ensemble import run_host_trace

    out, report = ensemble_export
    inputs, expected = tflm_reference
    nets_run = parse_output_bytes(expected)[1]
    picked = [int(i) for kind in (1, 3) for i in np.flatnonzero(nets_run == kind)[:2]]
    layers = _traced_layers(report)
    header = (out / "c" / "boosted_model.h").read_text()
    assert "#define BOOSTED_TRACED_TENSOR_NETS { 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3 }" in header
    for i, (calls, output) in zip(picked, run_host_trace(sanitized_runner, inputs[picked])):
        assert (output == expected[i]).all()
        run = layers[:len(calls)]
        assert len(calls) == (len(layers) if nets_run[i] == 3 else len(report["nets"][0]["traced"]))
        assert [t for t, _ in calls] == [t for _, t in run]
        for (_, got), want in zip(calls, _tflm_tensors(run, inputs[i])):
            assert np.array_equal(got, want)


@pytest.mark.qemu
@pytest.mark.arm
def test_firmware_runs_the_ensemble_bit_exact_on_qemu(ensemble_export, tflm_reference, tmp_path):
    """Three nets and the wrapper in one firmware, over the unchanged protocol: INFO names
    the ensemble, every INFER answer equals the Python rule over TFLM's outputs."""
    from lenet_edge.firmware_templates.boards import emulated_board
    from lenet_edge.flows import build, emulated_session

    out, report = ensemble_export
    board = emulated_board("qemu-mps2-an386", False)
    result = build(board, out)
    # RAM: the image's .arena (the model library's zero-initialised data) is the one arena
    # the nets share, under the sum of their plans (what three arenas took).
    plans = [n["arena_bytes"] for n in report["nets"]]
    assert result.sections["arena"] == report["arena_bytes"] < sum(plans)
    inputs, expected = tflm_reference
    count = 300
    with emulated_session(board, result.elf) as session:
        info = session.info()
        assert info.model_hash == read_ensemble(BUNDLED).hash
        assert info.int("output_size") == OUTPUT_BYTES
        assert info.int("arena_bytes") == report["arena_bytes"]
        got = dict(session.infer_stream((i, inputs[i]) for i in range(count)))
        # TRACE (the unchanged wire format): INFO's traced_tensors layers, each net's own;
        # after net 1's early exit the later layers answer tensor -1, size 0, count 0.
        layers = _traced_layers(report)
        assert info.int("traced_tensors") == len(layers)
        nets_run = parse_output_bytes(expected)[1]
        traces = {kind: (i := int(np.flatnonzero(nets_run == kind)[0]), session.trace(inputs[i]))
                  for kind in (3, 1)}  # the full run first: its counts must not linger
    device = np.stack([got[i].output for i in range(count)])
    assert (device == expected[:count]).all()
    for kind, (i, trace) in traces.items():
        ran = len(layers) if kind == 3 else len(report["nets"][0]["traced"])
        assert [t.tensor_index for t in trace] == [t for _, t in layers[:ran]] + [-1] * (len(layers) - ran)
        assert all(t.count > 0 for t in trace[:ran]) and all(t.count == 0 for t in trace[ran:])
        assert all(t.data.size == 0 for t in trace[ran:])
        for t, want in zip(trace, _tflm_tensors(layers[:ran], inputs[i])):
            assert np.array_equal(t.data, want)


def test_train_boosted_small(tmp_path):
    """Boosted training (what `lenet-edge train --variant boosted-lenet4` runs) on 600
    digits, one epoch, evaluated on 200: an ensemble folder whose figures were measured and
    whose rule reads back."""
    from lenet_edge.flows import train_boosted_ensemble

    out = tmp_path / "boosted"
    train_boosted_ensemble(out, epochs=1, train_limit=600, eval_limit=200, pool_copies=1,
                           log=lambda text: None)
    meta = json.loads((out / "ensemble.json").read_text())
    ensemble = read_ensemble(out)
    assert [p.name for p in sorted(out.glob("net*.keras"))] == [
        "net1.keras", "net2.keras", "net3.keras"]
    f, q = meta["float"], meta["int8_tflm"]
    assert f["net1"].startswith("trained") and f["train_images"] == 600
    assert f["net3_train_patterns"] > 0 and f["net2_train_patterns"] == 2 * f["net2_from_wrong"]
    assert q["test_digits"] == 200 and len(q["net_errors"]) == 3
    assert 1.0 <= q["nets_per_digit"] <= 3.0 and 0 <= q["ensemble_error"] <= 100
    assert ensemble.rule.threshold == meta["threshold"]


def test_train_cli_refuses_net1_for_other_variants(tmp_path, capsys):
    from lenet_edge.cli import main

    net1 = ASSETS / "lenet4" / "lenet5.keras"
    assert main(["train", "--variant", "lenet1", "--net1", str(net1), "--out",
                 str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "error: --net1 is for --variant boosted-lenet4 only" in err and "Traceback" not in err
    assert main(["train", "--variant", "boosted-lenet4", "--no-augment", "--out",
                 str(tmp_path)]) == 2
    assert "error: --no-augment does not apply to boosted-lenet4" in capsys.readouterr().err


@pytest.mark.qemu
@pytest.mark.arm
def test_zoo_row_of_the_ensemble(tmp_path):
    """`zoo --variants boosted-lenet4`: the TFLM ensemble's figures, the average MACs and
    instructions over the mix of early exits and full runs, device answers checked."""
    from lenet_edge.cli import main

    out = tmp_path / "zoo"
    assert main(["zoo", "--variants", "boosted-lenet4", "--board", "qemu-mps2-an386",
                 "--count", "3", "--limit", "500", "--out", str(out)]) == 0
    row = json.loads((out / "zoo.json").read_text())["variants"]["boosted-lenet4"]
    board = row["boards"]["qemu-mps2-an386"]
    assert row["paper"]["error"] == 0.7 and row["test_digits"] == 500
    assert row["parameters"] == 3 * 17_650 and row["device_bit_exact_digits"] >= 3
    one, three = board["instructions_one_net"], board["instructions_three_nets"]
    assert 0 < one < three and one <= board["instructions"] <= three  # both kinds ran
    from lenet_edge.bundled import bundled_model
    from lenet_edge.codegen.generate import generate_c

    # Each net is a LeNet-4 with the same tables: the MACs the M4's kernels execute for one.
    per_net = generate_c(bundled_model("lenet4").read_bytes(), cpus=("cortex-m4",)).stats.macs_executed
    share3 = (row["nets_per_digit"] - 1) / 2
    assert row["macs_executed"] == round(per_net * (1 + 2 * share3))
    assert row["macs_executed_all_nets"] == 3 * per_net


def test_export_ensemble_is_deterministic_and_checks_the_nets(ensemble_export, tmp_path, capsys):
    from lenet_edge.cli import main
    from lenet_edge.codegen.ensemble import export_ensemble

    out, _ = ensemble_export
    again = tmp_path / "again"
    export_ensemble(BUNDLED, again, cpus=("cortex-m4",))  # the fixture's board's CPU
    first = {p.name: p.read_bytes() for p in sorted((out / "c").iterdir())}
    assert first == {p.name: p.read_bytes() for p in sorted((again / "c").iterdir())}
    # `export --variant boosted-lenet4` is the bundled ensemble, as --ensemble gives it.
    assert main(["export", "--variant", "boosted-lenet4", "--cpu", "cortex-m4",
                 "--out", str(tmp_path / "by_variant")]) == 0
    assert first == {p.name: p.read_bytes() for p in sorted((tmp_path / "by_variant" / "c").iterdir())}
    # ensemble.json naming another zero point than net 2's .tflite: refused.
    bad = tmp_path / "bad"
    bad.mkdir()
    for p in BUNDLED.glob("*_int8.tflite"):
        (bad / p.name).write_bytes(p.read_bytes())
    meta = json.loads((BUNDLED / "ensemble.json").read_text())
    meta["zero_points"][1] += 1
    (bad / "ensemble.json").write_text(json.dumps(meta))
    with pytest.raises(LenetEdgeError, match="gives net 2 output scale .* its .tflite"):
        export_ensemble(bad, tmp_path / "x")
    assert main(["export", "--ensemble", str(BUNDLED), "--model", str(bad / "net1_int8.tflite"),
                 "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err
    assert "error: --ensemble takes the ensemble's own nets" in err and "Traceback" not in err
