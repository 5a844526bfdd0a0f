"""`quantize --argmax-range` (quantize/output_range.py): the output tensor quantized over
the calibration logits' argmax range, patched in place; TFLM, the TFLite interpreter and
the generated C stay exact with one another, and the finer step removes most int8 ties."""

import numpy as np
import pytest

from lenet_edge.bundled import bundled_model
from lenet_edge.errors import LenetEdgeError
from lenet_edge.quantize.evaluate import float_logits, litert_logits, model_inputs, tflm_logits
from lenet_edge.quantize.output_range import (argmax_range, int8_params,
                                              set_output_quantization)
from lenet_edge.quantize.pipeline import quantize
from lenet_edge.train.zip1989 import load_zip1989
from tests.codegen_fixtures import assert_matches_tflm, stress_inputs

VARIANT = "zip1989-modern"  # its whole-range output step (0.27) rounded 8 test digits to ties


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The bundled zip1989-modern .keras quantized with --argmax-range (300 test digits)."""
    out = tmp_path_factory.mktemp("argmax")
    report = quantize(bundled_model(VARIANT, "keras"), out, eval_limit=300, argmax_range=True)
    return report, (out / "lenet5_int8.tflite").read_bytes()


def _output_params(model_bytes):
    from lenet_edge.quantize.litert import litert_interpreter

    (out,) = litert_interpreter(model_bytes).get_output_details()
    return out["quantization"]


def test_only_the_output_quantization_changes(converted):
    report, model_bytes = converted
    bundled = bundled_model(VARIANT).read_bytes()
    assert report["output_range"] == "argmax" and len(model_bytes) == len(bundled)
    # One float32 scale and one int64 zero point: at most 12 bytes differ.
    differing = np.frombuffer(model_bytes, np.uint8) != np.frombuffer(bundled, np.uint8)
    assert 0 < differing.sum() <= 12
    (scale, zero_point), (old_scale, _) = _output_params(model_bytes), _output_params(bundled)
    assert scale < old_scale / 2  # 0.117 against 0.268


def test_range_is_the_calibration_logits_argmax_range():
    logits = np.array([[3.0, -40.0, 1.0], [-2.0, 5.0, 25.0], [-1.0, -0.5, -30.0]])
    assert argmax_range(logits) == (-0.5, 25.0)
    scale, zero_point = int8_params(-0.5, 25.0)
    assert np.isclose(scale, 25.5 / 255) and zero_point == -123
    # A range above 0 is widened to hold it (the zero point is an int8).
    assert int8_params(1.7, 30.0) == (30.0 / 255, -128)
    with pytest.raises(LenetEdgeError, match="empty"):
        int8_params(0.0, 0.0)


def test_patched_model_is_exact_under_tflm_tflite_and_the_generated_c(converted, tmp_path):
    from lenet_edge.codegen.export import export
    from lenet_edge.codegen.host_build import HostModel, build_shared_library

    _, model_bytes = converted
    path = tmp_path / "argmax.tflite"
    path.write_bytes(model_bytes)
    images = load_zip1989()["test"][0][:300]
    inputs = np.concatenate([model_inputs(model_bytes, images).reshape(300, -1),
                             stress_inputs(200, size=256, side=16)])
    result = export(model_bytes, tmp_path / "c", measure_tflm=False, measure_code=False)
    assert_matches_tflm(path, HostModel(build_shared_library(result.c_dir, tmp_path / "lib.so")),
                        inputs)
    tflm, lite = tflm_logits(model_bytes, images), litert_logits(model_bytes, images)
    assert np.abs(tflm.astype(int) - lite).max() <= 2


def test_finer_output_has_fewer_ties_and_keeps_the_float_argmax(converted):
    _, model_bytes = converted
    images = load_zip1989()["test"][0]
    float_pred = float_logits(bundled_model(VARIANT, "keras"), images).argmax(1)

    def ties_and_agreement(model):
        logits = tflm_logits(model, images)
        top2 = np.sort(logits, axis=1)[:, -2:]
        return int((top2[:, 0] == top2[:, 1]).sum()), (logits.argmax(1) == float_pred).mean()

    ties, agree = ties_and_agreement(model_bytes)
    old_ties, old_agree = ties_and_agreement(bundled_model(VARIANT).read_bytes())
    assert ties < old_ties and agree >= 0.997, (ties, old_ties, agree, old_agree)


def test_patch_sets_the_given_parameters_and_nothing_else():
    bundled = bundled_model(VARIANT).read_bytes()
    patched = set_output_quantization(bundled, 0.125, -100)
    assert _output_params(patched) == (0.125, -100)
    assert (np.frombuffer(patched, np.uint8) != np.frombuffer(bundled, np.uint8)).sum() <= 12
    # TFLM derives the requantization from the patched scale: logits rescaled by 0.268/0.125.
    images = load_zip1989()["test"][0][:20]
    old, new = tflm_logits(bundled, images).astype(float), tflm_logits(patched, images)
    scale, zero_point = _output_params(bundled)
    expected = np.clip(np.round((old - zero_point) * scale / 0.125) - 100, -128, 127)
    assert np.abs(new - expected).max() <= 3
