"""Quantization-aware fine-tuning (train/qat.py): a short real run of each simulated variant
with a QAT phase keeps its connection table (zip1989-modern's H2, LeNet-1's C3) exactly zero
in Keras and in the int8 .tflite, and its int8 simulation is what the converter + TFLM then
compute."""

import subprocess
import sys

import numpy as np
import pytest

from lenet_edge.train.models import LENET1_C3_TABLE, ZIP1989_H2_TABLE, connection_mask

# variant: (float epochs, training digits, the sparse layer, its table, its input maps)
RUNS = {"zip1989-modern": (3, 1500, "h2", ZIP1989_H2_TABLE, 12),
        "lenet1": (1, 2000, "c3", LENET1_C3_TABLE, 4)}
TEST_ACCURACY = {"zip1989-modern": (2007, 70), "lenet1": (10000, 60)}


@pytest.fixture(params=list(RUNS))
def short_qat_run(request):
    from lenet_edge.train.training import train

    epochs, limit, *table = RUNS[request.param]
    return train(request.param, epochs=epochs, train_limit=limit, qat_epochs=1, seed=4), table


def test_qat_phase_keeps_the_table_zero_and_the_simulation_matches_tflm(short_qat_run):
    from lenet_edge.quantize.convert import calibration_images, convert_int8
    from lenet_edge.quantize.evaluate import float_logits, tflm_logits
    from lenet_edge.train.qat import fake_quant_logits, qat_model

    from lenet_edge.train.qat import ACTIVATIONS

    result, (layer, table, in_maps) = short_qat_run
    variant, m = result.metrics["variant"], result.metrics
    q = m["quantization_aware"]
    assert q["epochs"] == 1 and m["epochs"] == RUNS[variant][0]
    assert set(q["activation_ranges"]) == set(ACTIVATIONS[variant])
    total, floor = TEST_ACCURACY[variant]
    assert m["test_total"] == total and m["test_accuracy"] > floor

    model = result.model
    absent = connection_mask(table, in_maps) == 0
    kernel = model.get_layer(layer).kernel.numpy()
    assert np.all(kernel[:, :, absent] == 0.0) and np.all(kernel[:, :, ~absent] != 0.0)

    calibration = calibration_images(result.train_data[0])
    model_bytes = convert_int8(model, calibration)
    # The sparse layer's int8 kernel in the .tflite (output channels first): zero wherever
    # the table has no connection.
    sparse, (scale, zero_point) = _int8_tensors(model_bytes, (len(table), 5, 5, in_maps))
    int8_kernel = np.transpose(sparse, (1, 2, 3, 0))  # as Keras: (5, 5, in, out)
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
    result = subprocess.run([sys.executable, "-m", "lenet_edge", "train", "--variant", "lenet4",
                             "--qat-epochs", "2"], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "error: --qat-epochs is for zip1989-modern, lenet1 only" in result.stderr
    assert "Traceback" not in result.stderr


def _int8_tensors(model_bytes, shape):
    """(the int8 kernel of ``shape``, the output's (scale, zero point)) from the flatbuffer."""
    import tflite

    model = tflite.Model.GetRootAsModel(model_bytes, 0)
    graph = model.Subgraphs(0)
    kernels = []
    for i in range(graph.TensorsLength()):
        t = graph.Tensors(i)
        if t.ShapeAsNumpy().tolist() == list(shape) and t.Type() == tflite.TensorType.INT8:
            data = model.Buffers(t.Buffer()).DataAsNumpy()
            kernels.append(np.frombuffer(data.tobytes(), np.int8).reshape(shape))
    assert len(kernels) == 1, f"one {shape} int8 kernel: the sparse layer's"
    out = graph.Tensors(graph.Outputs(0)).Quantization()
    return kernels[0], (float(out.Scale(0)), int(out.ZeroPoint(0)))
