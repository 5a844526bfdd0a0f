"""`lenet-edge export`: the files it writes, compiled strictly, bit-exact with TFLM."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from lenet_edge.cli import main
from lenet_edge.codegen.host_build import HostModel, build_shared_library
from lenet_edge.quantize.tflm import TflmModel
from tests.codegen_fixtures import lenet_model_files, mnist_test  # noqa: F401


def test_export_writes_model_c_and_report(lenet_model_files, tmp_path, capsys):
    model = lenet_model_files["classic"]
    out = tmp_path / "out"
    assert main(["export", "--target", "cortex-m", "--model", str(model), "--out", str(out),
                 "--cpu", "cortex-m4"]) == 0
    assert (out / "model" / "lenet5_int8.tflite").read_bytes() == model.read_bytes()
    assert sorted(p.name for p in (out / "c").iterdir()) == [
        "CMakeLists.txt", "lenet5_model.c", "lenet5_model.h", "lenet5_weights.h"]
    report = json.loads((out / "export_report.json").read_text())
    for key in ("macs_dense", "macs_executed", "weights_bytes", "arena_bytes",
                "tflm_arena_bytes", "code_bytes"):
        assert key in report
    assert report["macs_executed"] < report["macs_dense"]  # classic C3 table skipped
    assert report["arena_bytes"] < report["tflm_arena_bytes"]
    assert report["code_bytes"]["cortex-m4"] > 0
    import hashlib

    header = (out / "c" / "lenet5_model.h").read_text()
    assert f'#define LENET5_MODEL_HASH "{hashlib.sha256(model.read_bytes()).hexdigest()}"' in header
    assert f"#define LENET5_ARENA_BYTES {report['arena_bytes']}" in header
    assert "MACs dense" in capsys.readouterr().out


def test_export_is_deterministic(lenet_model_files, tmp_path):
    from lenet_edge.codegen.export import export

    data = lenet_model_files["classic"].read_bytes()
    a = export(data, tmp_path / "a", measure_tflm=False, measure_code=False)
    b = export(data, tmp_path / "b", measure_tflm=False, measure_code=False)
    for name in a.library.files:
        assert (a.c_dir / name).read_bytes() == (b.c_dir / name).read_bytes()
    assert (tmp_path / "a" / "export_report.json").read_bytes() == \
        (tmp_path / "b" / "export_report.json").read_bytes()


@pytest.mark.parametrize("fuse", [True, False])
@pytest.mark.parametrize("variant", ["modern", "classic"])
def test_host_c_matches_tflm_on_mnist_digits(variant, fuse, lenet_model_files, mnist_test,
                                             tmp_path):
    """Strict host build, then every traced tensor equals TFLM's on real digits: the fused
    build traces the tensors it materialises (each fused group's last), the unfused all."""
    from lenet_edge.codegen.export import export

    model = lenet_model_files[variant]
    result = export(model.read_bytes(), tmp_path, measure_tflm=False, measure_code=False,
                    fuse=fuse)
    lib = HostModel(build_shared_library(result.c_dir, tmp_path / "lib.so"))
    images, _ = mnist_test
    pixels = images[:200]
    inputs = np.stack([lib.quantize_pixels(p) for p in pixels])
    np.testing.assert_array_equal(inputs, (pixels.astype(np.int16) - 128).astype(np.int8)
                                  .reshape(len(pixels), -1))
    outputs, traces = lib.trace_batch(inputs)
    ref = TflmModel(model, preserve_all_tensors=True)
    every = [op.outputs[0] for op in ref.ops]
    traced = [t for t, _ in lib.trace_layout]
    if fuse:
        assert traced == [t for t in every if t in traced] and every[-1] in traced
        assert len(traced) < len(every)
        assert result.report["arena_bytes"] <= 2560
    else:
        assert traced == every
    for i, x in enumerate(inputs):
        np.testing.assert_array_equal(ref.invoke(x).reshape(-1), outputs[i])
        for t, values in traces.items():
            np.testing.assert_array_equal(ref.tensor(t).reshape(-1), values[i],
                                          err_msg=f"tensor {t}, image {i}")
        assert lib.argmax(outputs[i]) == int(np.argmax(outputs[i]))


def test_bundled_default_when_no_model(tmp_path):
    from lenet_edge.bundled import bundled_model
    from lenet_edge.errors import LenetEdgeError

    try:
        bundled = bundled_model("modern")
    except LenetEdgeError:
        pytest.fail("the bundled modern model is missing")
    out = tmp_path / "out"
    assert main(["export", "--out", str(out), "--no-tflm-arena", "--cpu", "cortex-m0plus"]) == 0
    assert (out / "model" / "lenet5_int8.tflite").read_bytes() == bundled.read_bytes()
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-c",
                    str(out / "c" / "lenet5_model.c"), "-o", str(tmp_path / "m.o")], check=True)


def test_target_host_and_board(lenet_model_files, tmp_path):
    out = tmp_path / "out"
    assert main(["export", "--target", "host", "--model", str(lenet_model_files["modern"]),
                 "--board", "qemu-mps2-an386", "--out", str(out), "--no-tflm-arena",
                 "--cpu", "cortex-m4"]) == 0
    lib = HostModel(out / "host" / "liblenet5.so")
    assert lib.output_size == 10
    assert (out / "firmware").is_dir() and any((out / "firmware").iterdir())


def test_eval_c_backend_equals_tflm(lenet_model_files, tmp_path):
    report = tmp_path / "eval.json"
    assert main(["eval", "--model", str(lenet_model_files["classic"]), "--backend", "tflm",
                 "--backend", "c", "--backend", "tflite", "--limit", "300",
                 "--json", str(report)]) == 0
    result = json.loads(report.read_text())
    assert result["images"] == 300
    assert result["backends"]["c"]["bytes_equal_tflm"] == 300
    assert result["backends"]["c"]["accuracy"] == result["backends"]["tflm"]["accuracy"]
