"""Quantization-aware fine-tuning (train/qat.py): a short real run of zip1989-modern with a
QAT phase keeps H2's connection table exactly zero (in Keras and in the int8 .tflite), and
its int8 simulation is what the converter + TFLM then compute."""

import subprocess
import sys

import numpy as np
import pytest

from lenet_edge.train.models import ZIP1989_H2_TABLE, connection_mask


@pytest.fixture(scope="module")
def short_qat_run():
    from lenet_edge.train.training import train

    return train("zip1989-modern", epochs=3, train_limit=1500, qat_epochs=1, seed=4)


def test_qat_phase_keeps_the_table_zero_and_the_simulation_matches_tflm(short_qat_run):
    from lenet_edge.quantize.convert import calibration_images, convert_int8
    from lenet_edge.quantize.evaluate import float_logits, tflm_logits
    from lenet_edge.train.qat import fake_quant_logits, qat_model

    result = short_qat_run
    q = result.metrics["quantization_aware"]
    assert q["epochs"] == 1 and result.metrics["epochs"] == 3
    assert set(q["activation_ranges"]) == {"h1_conv", "h1", "h2_conv", "h2", "h3", "logits"}
    assert result.metrics["test_total"] == 2007 and result.metrics["test_accuracy"] > 70

    model = result.model
    absent = connection_mask(ZIP1989_H2_TABLE, 12) == 0
    kernel = model.get_layer("h2").kernel.numpy()
    assert np.all(kernel[:, :, absent] == 0.0) and np.all(kernel[:, :, ~absent] != 0.0)

    calibration = calibration_images(result.train_data[0])
    model_bytes = convert_int8(model, calibration)
    # H2's int8 kernel in the .tflite (output channels first): zero exactly where the table is.
    h2_kernel, (scale, zero_point) = _int8_tensors(model_bytes)
    int8_kernel = np.transpose(h2_kernel, (1, 2, 3, 0))  # as Keras: (5, 5, in, out)
    assert np.all(int8_kernel[:, :, absent] == 0)
    assert (int8_kernel[:, :, ~absent] != 0).mean() > 0.9  # (a tiny weight may round to 0)

    images = result.eval_data[0][:400]
    qat = qat_model(model)
    qat.calibrate(calibration)
    simulated = fake_quant_logits(qat, images)
    int8 = tflm_logits(model_bytes, images)
    dequantized = (int8.astype(np.float32) - zero_point) * scale
    flt = float_logits(model, images)
    # The simulation is the int8 model up to the roundings it leaves out (int32 biases,
    # TFLM's requantization): closer to TFLM's logits than the float net is, and the same
    # argmax on nearly every digit.
    sim_error = np.abs(dequantized - simulated).mean()
    float_error = np.abs(dequantized - flt).mean()
    assert sim_error < 0.5 * float_error, (sim_error, float_error)
    assert (simulated.argmax(1) == int8.argmax(1)).mean() >= 0.99


def test_qat_is_refused_for_a_graph_it_does_not_simulate():
    result = subprocess.run([sys.executable, "-m", "lenet_edge", "train", "--variant", "lenet1",
                             "--qat-epochs", "2"], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "error: --qat-epochs is for zip1989-modern only" in result.stderr
    assert "Traceback" not in result.stderr


def _int8_tensors(model_bytes):
    """(H2's int8 kernel, the output's (scale, zero point)) read from the flatbuffer."""
    import tflite

    model = tflite.Model.GetRootAsModel(model_bytes, 0)
    graph = model.Subgraphs(0)
    kernels = []
    for i in range(graph.TensorsLength()):
        t = graph.Tensors(i)
        if t.ShapeAsNumpy().tolist() == [12, 5, 5, 12] and t.Type() == tflite.TensorType.INT8:
            data = model.Buffers(t.Buffer()).DataAsNumpy()
            kernels.append(np.frombuffer(data.tobytes(), np.int8).reshape(12, 5, 5, 12))
    assert len(kernels) == 1, "one 12x5x5x12 int8 kernel: H2's"
    out = graph.Tensors(graph.Outputs(0)).Quantization()
    return kernels[0], (float(out.Scale(0)), int(out.ZeroPoint(0)))
