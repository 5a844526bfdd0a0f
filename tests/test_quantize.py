"""int8 conversion: the tensors and ops the rest of the pipeline relies on, both interpreters,
the bundled models, the report and the CLI's errors."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from lenet_edge.bundled import bundled_model
from lenet_edge.cli import main
from lenet_edge.quantize.convert import calibration_images
from lenet_edge.quantize.evaluate import litert_logits, pixels_to_int8
from lenet_edge.quantize.litert import litert_interpreter
from lenet_edge.quantize.pipeline import quantize
from lenet_edge.quantize.tflm import TflmModel
from lenet_edge.train.models import c3_mask

CLASSIC_OPS = ["CONV_2D", "TANH", "AVERAGE_POOL_2D", "CONV_2D", "TANH", "AVERAGE_POOL_2D",
               "CONV_2D", "TANH", "FULLY_CONNECTED", "TANH", "FULLY_CONNECTED"]
MODERN_OPS = ["CONV_2D", "MAX_POOL_2D", "CONV_2D", "MAX_POOL_2D", "CONV_2D",
              "FULLY_CONNECTED", "FULLY_CONNECTED"]


@pytest.fixture(scope="module")
def classic(tmp_path_factory):
    """The bundled classic .keras quantized afresh (evaluated on 300 test images)."""
    out = tmp_path_factory.mktemp("classic")
    report = quantize(bundled_model("classic", "keras"), out, eval_limit=300)
    return report, (out / "lenet5_int8.tflite").read_bytes()


def weight_tensors(model_bytes):
    """name -> (int8/int32 values, quantization parameters) of the constant tensors."""
    interp = litert_interpreter(model_bytes)
    found = {}
    for detail in interp.get_tensor_details():
        if detail["dtype"] in (np.int8, np.int32) and len(detail["shape"]) in (1, 2, 4):
            try:
                found[detail["index"]] = (interp.get_tensor(detail["index"]), detail)
            except ValueError:
                continue  # activations have no value before invoke
    return found


def test_requantizing_the_bundled_model_reproduces_its_tflite(classic):
    _, model_bytes = classic
    assert model_bytes == bundled_model("classic", "tflite").read_bytes()


def test_int8_input_output_and_exact_input_quantization(classic):
    report, model_bytes = classic
    interp = litert_interpreter(model_bytes)
    (inp,), (out,) = interp.get_input_details(), interp.get_output_details()
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8
    assert list(inp["shape"]) == [1, 28, 28, 1] and list(out["shape"]) == [1, 10]
    scale, zero_point = inp["quantization"]
    assert zero_point == -128 and scale == np.float32(1 / 255)
    assert report["input"] == {"shape": [1, 28, 28, 1], "dtype": "int8",
                               "scale": float(np.float32(1 / 255)), "zero_point": -128}
    assert pixels_to_int8(np.array([0, 1, 128, 255], np.uint8)).tolist() == [-128, -127, 0, 127]


def test_graph_has_only_microcontroller_ops(classic):
    report, _ = classic
    assert report["ops"] == CLASSIC_OPS  # no SOFTMAX, QUANTIZE, RESHAPE/SHAPE plumbing
    modern = json.loads((bundled_model("modern", "tflite").parent / "quant_report.json")
                        .read_text())
    assert modern["ops"] == MODERN_OPS


def test_weights_per_channel_int8_biases_int32_and_c3_zeros(classic):
    _, model_bytes = classic
    tensors = weight_tensors(model_bytes)
    filters = {tuple(v.shape): (v, d) for v, d in tensors.values() if v.dtype == np.int8}
    biases = {v.shape[0]: (v, d) for v, d in tensors.values() if v.dtype == np.int32}
    for shape in [(6, 5, 5, 1), (16, 5, 5, 6), (120, 5, 5, 16), (84, 120), (10, 84)]:
        values, detail = filters[shape]
        q = detail["quantization_parameters"]
        assert len(q["scales"]) == shape[0], f"{shape}: one scale per output channel"
        assert q["quantized_dimension"] == 0 and not np.any(q["zero_points"])
        assert shape[0] in biases and biases[shape[0]][0].dtype == np.int32
    c3 = filters[(16, 5, 5, 6)][0]  # (out, kh, kw, in)
    absent = (c3_mask() == 0).T  # (out, in)
    assert np.all(c3[absent[:, None, None, :].repeat(5, 1).repeat(5, 2)] == 0)
    assert np.all(np.abs(c3).sum(axis=(1, 2))[~absent] > 0)


def test_runs_under_tflm_and_tflite_and_agrees_with_float(classic, mnist_test):
    report, model_bytes = classic
    assert report["test_images"] == 300 and report["variant"] == "classic"
    assert report["calibration_images"] == 1002
    for key in ("float_accuracy", "int8_tflm_accuracy", "int8_tflite_accuracy"):
        assert report[key] > 97
    assert report["argmax_agreement_with_float"]["tflm"] >= 99
    assert report["argmax_agreement_with_float"]["tflite"] >= 99
    diff = report["tflm_vs_tflite"]
    assert diff["logits_total"] == 3000 and diff["max_abs_difference"] <= 2
    # The two runtimes directly, on a few digits.
    images = mnist_test[0][:20]
    tflm = TflmModel(model_bytes)
    tflm_out = np.stack([tflm.invoke(x).reshape(-1) for x in pixels_to_int8(images)])
    lite_out = litert_logits(model_bytes, images)
    assert tflm_out.dtype == np.int8 and lite_out.dtype == np.int8
    assert np.abs(tflm_out.astype(int) - lite_out).max() <= 2
    assert np.array_equal(tflm_out.argmax(1), mnist_test[1][:20])


# Float accuracy targets: LeNet-5's own, and for LeNet-1 / LeNet-4 the 1998 paper's error
# (1.7 %, 1.1 %) or better.
@pytest.mark.parametrize("variant, target", [("modern", 99.2), ("classic", 99.0),
                                             ("lenet1", 98.3), ("lenet4", 98.9)])
def test_bundled_models_meet_their_targets(variant, target, mnist_test):
    import keras

    import lenet_edge.train.models  # noqa: F401  (registers the C3 layer)
    from lenet_edge.train.training import to_model_input

    images, labels = mnist_test
    model = keras.models.load_model(bundled_model(variant, "keras"))
    float_pred = model.predict(to_model_input(images), batch_size=1000, verbose=0).argmax(1)
    assert (float_pred == labels).mean() * 100 >= target
    # int8 under TFLM on the first 1,000 digits: the same answers as float, almost always.
    tflm = TflmModel(bundled_model(variant, "tflite"))
    int8_pred = np.array([tflm.invoke(x).argmax() for x in pixels_to_int8(images[:1000])])
    assert (int8_pred == float_pred[:1000]).mean() >= 0.995


@pytest.mark.parametrize("variant", ["lenet1", "lenet4"])
def test_bundled_family_int8_is_within_a_tenth_of_a_point_of_float(variant, mnist_test):
    import keras

    import lenet_edge.train.models  # noqa: F401  (registers SparseConv2D)
    from lenet_edge.train.training import to_model_input

    images, labels = mnist_test
    model = keras.models.load_model(bundled_model(variant, "keras"))
    float_acc = (model.predict(to_model_input(images), batch_size=1000, verbose=0).argmax(1)
                 == labels).mean() * 100
    tflm = TflmModel(bundled_model(variant, "tflite"))
    int8_acc = (tflm.run_batch(pixels_to_int8(images).reshape(len(images), -1)).argmax(1)
                == labels).mean() * 100
    assert abs(int8_acc - float_acc) <= 0.1 + 1e-9, (float_acc, int8_acc)


def test_calibration_covers_the_full_pixel_range(mnist_test):
    calibration = calibration_images(mnist_test[0], count=50)
    assert len(calibration) == 52 and calibration.dtype == np.uint8
    assert calibration[0].max() == 0 and calibration[1].min() == 255


def test_quantize_cli_writes_tflite_and_report(tmp_path):
    shutil.copy(bundled_model("modern", "keras"), tmp_path / "lenet5.keras")
    result = subprocess.run(
        [sys.executable, "-m", "lenet_edge", "quantize", "--model",
         str(tmp_path / "lenet5.keras"), "--limit", "100"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "quant_report.json").read_text())
    assert report["variant"] == "modern" and report["test_images"] == 100
    assert (tmp_path / "lenet5_int8.tflite").read_bytes() == \
        bundled_model("modern", "tflite").read_bytes()
    assert report["model_bytes"] == (tmp_path / "lenet5_int8.tflite").stat().st_size
    assert "int8 TFLM" in result.stderr and "Traceback" not in result.stderr


def test_quantize_cli_errors_are_clear(tmp_path, capsys):
    def error_of(*args):
        assert main(["quantize", *args]) != 0
        err = capsys.readouterr().err
        # One error line (after at most a warning about the model).
        *before, last = err.strip().splitlines()
        assert last.startswith("error: ") and "Traceback" not in err
        assert all(line.startswith("warning: ") for line in before)
        return last

    assert "model file not found" in error_of("--model", str(tmp_path / "none.keras"))
    (tmp_path / "model.h5").write_bytes(b"x")
    assert "not a .keras file" in error_of("--model", str(tmp_path / "model.h5"))
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    assert "cannot load" in error_of("--model", str(tmp_path / "broken.keras"))

    import keras

    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    other.save(tmp_path / "other.keras")
    # Any Keras model converts now (with a warning), but its input must fit the data.
    assert "the model takes 4 inputs, but MNIST test set has 28x28x1 images" in error_of(
        "--model", str(tmp_path / "other.keras"))
