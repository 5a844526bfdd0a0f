"""LeNet-5 models and training: the classic C3 table, a short real training run, the CLI."""

import json
import subprocess
import sys

import numpy as np
import pytest

from lenet_edge.train.models import C3_TABLE, build_model, c3_mask, with_batch_one
from lenet_edge.train.training import parameter_count, save_keras, train


def test_c3_connection_table_is_lecun_table_1():
    mask = c3_mask()
    assert mask.shape == (6, 16)
    assert mask.sum(axis=0).tolist() == [3] * 6 + [4] * 9 + [6]
    # Spot checks against the paper's Table I (rows: S2 maps, columns: C3 maps).
    table = [sorted(maps) for maps in C3_TABLE]
    assert table[0] == [0, 1, 2] and table[4] == [0, 4, 5]
    assert table[9] == [0, 3, 4, 5] and table[12] == [0, 1, 3, 4]
    assert table[13] == [1, 2, 4, 5] and table[14] == [0, 2, 3, 5] and table[15] == list(range(6))
    assert mask[:, 0].tolist() == [1, 1, 1, 0, 0, 0]
    assert mask[0].tolist() == [1, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 1]


def test_classic_c3_has_1516_trainable_parameters():
    model = build_model("classic")
    c3 = model.get_layer("c3")
    assert c3.count_params() == 6 * (3 * 25 + 1) + 6 * (4 * 25 + 1) + 3 * (4 * 25 + 1) + (6 * 25 + 1)
    assert c3.count_params() == 1516
    assert parameter_count(model) == 156 + 1516 + 48120 + 10164 + 850
    kernel = c3.kernel.numpy()
    absent = c3_mask() == 0
    assert np.all(kernel[:, :, absent] == 0) and np.all(kernel[:, :, ~absent] != 0)


@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_shapes_and_batch_one_copy(variant):
    model = build_model(variant)
    assert model.input_shape == (None, 28, 28, 1) and model.output_shape == (None, 10)
    assert [layer.output.shape[1:] for layer in model.layers[1:6]] == [
        (28, 28, 6), (14, 14, 6), (10, 10, 16), (5, 5, 16), (1, 1, 120)]
    fixed = with_batch_one(model)
    assert fixed.input_shape == (1, 28, 28, 1)
    x = np.random.default_rng(0).random((1, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(fixed(x).numpy(), model(x).numpy(), rtol=1e-6, atol=1e-6)


def test_classic_short_training_learns_keeps_table_and_is_reproducible(tmp_path):
    import keras

    result = train("classic", epochs=1, seed=3, train_limit=3000)
    m = result.metrics
    assert m["test_total"] == 10000 and m["train_images"] == 3000 and m["epochs"] == 1
    assert m["test_accuracy"] > 60, "one epoch on 3,000 images must learn far above 10 %"
    assert m["parameters"] == 60806
    kernel = result.model.get_layer("c3").kernel.numpy()
    absent = c3_mask() == 0
    assert np.all(kernel[:, :, absent] == 0.0), "absent C3 connections must stay exactly zero"
    assert np.count_nonzero(kernel[:, :, ~absent]) == 60 * 25

    # Saved, reloaded: same weights, same table, same parameter count; bytes are stable.
    save_keras(result.model, tmp_path / "a.keras")
    save_keras(result.model, tmp_path / "b.keras")
    assert (tmp_path / "a.keras").read_bytes() == (tmp_path / "b.keras").read_bytes()
    loaded = keras.models.load_model(tmp_path / "a.keras")
    assert loaded.get_layer("c3").count_params() == 1516
    for a, b in zip(loaded.get_weights(), result.model.get_weights()):
        assert np.array_equal(a, b)

    # Same seed, same model (CPU, op determinism on).
    again = train("classic", epochs=1, seed=3, train_limit=3000)
    for a, b in zip(again.model.get_weights(), result.model.get_weights()):
        assert np.array_equal(a, b)


def test_train_cli_writes_model_and_metrics(tmp_path):
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "lenet_edge", "train", "--variant", "modern", "--epochs", "1",
         "--limit", "2000", "--seed", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (out / "lenet5.keras").is_file()
    metrics = json.loads((out / "train_metrics.json").read_text())
    assert metrics["variant"] == "modern" and metrics["epochs"] == 1 and metrics["seed"] == 1
    assert metrics["parameters"] == 61706
    assert metrics["test_total"] == 10000 and metrics["test_accuracy"] > 60
    assert sorted(metrics["per_class_accuracy"]) == [str(c) for c in range(10)]
    assert metrics["wall_seconds"] > 0
    assert "test accuracy" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--variant", "lenet7"], "Invalid value for '--variant'"),
    (["--epochs", "0"], "Invalid value for '--epochs'"),
    (["--data", "/nonexistent/mnist"], "error: MNIST directory /nonexistent/mnist"),
])
def test_train_cli_errors_are_clear(args, message):
    result = subprocess.run([sys.executable, "-m", "lenet_edge", "train", *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
