"""Bad models: each gets one clear error and a non-zero exit from `lenet-edge export`."""

from __future__ import annotations

import pytest

from lenet_edge.cli import main
from tests.codegen_fixtures import lenet_model_files, mnist_test  # noqa: F401


def _export(path, tmp_path, capsys):
    rc = main(["export", "--model", str(path), "--out", str(tmp_path / "out"),
               "--no-tflm-arena", "--cpu", "cortex-m0plus"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err


def _keras_model(kind: str):
    import keras

    L = keras.layers
    inputs = L.Input((8, 8, 2), batch_size=1)
    if kind == "upsample":
        x = L.UpSampling2D(2)(L.Conv2D(3, 3)(inputs))
    elif kind == "broadcast":  # ADD of two activations of different shapes
        x = L.Conv2D(3, 3, padding="same")(inputs)
        x = L.Add()([x, L.GlobalAveragePooling2D(keepdims=True)(x)])
    else:
        x = L.Conv2D(3, 3, activation="relu")(inputs)
    x = L.Flatten()(x)
    x = L.Dense(4)(x)
    return keras.Model(inputs, x)


def _convert(model, mode: str) -> bytes:
    import numpy as np
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode == "float":
        return conv.convert()
    rng = np.random.default_rng(0)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([rng.random((1, 8, 8, 2), np.float32)]
                                           for _ in range(16))
    if mode == "int16":
        conv.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        conv.inference_input_type = tf.int16
        conv.inference_output_type = tf.int16
    else:
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


@pytest.mark.parametrize("damage", ["truncated", "corrupt", "not_tflite", "empty"])
def test_damaged_files(damage, lenet_model_files, tmp_path, capsys):
    data = lenet_model_files["modern"].read_bytes()
    bad = {
        "truncated": data[: len(data) // 3],
        "corrupt": data[:8] + bytes((b * 7 + 13) % 256 for b in data[8:600]) + data[600:],
        "not_tflite": b"this is not a model at all, just text\n" * 10,
        "empty": b"",
    }[damage]
    path = tmp_path / "bad.tflite"
    path.write_bytes(bad)
    rc, err = _export(path, tmp_path, capsys)
    assert rc != 0
    assert err.startswith("error: ") and "bad.tflite" in err


def test_missing_file(tmp_path, capsys):
    rc, err = _export(tmp_path / "nope.tflite", tmp_path, capsys)
    assert rc != 0 and "not found" in err


@pytest.mark.parametrize("kind, mode, expect", [
    ("plain", "float", "float (unquantized) model"),
    ("plain", "int16", "int16"),
    ("upsample", "int8", "TILE is not supported"),
    ("broadcast", "int8", "ADD is not supported: operands of shapes"),
])
def test_unsupported_models(kind, mode, expect, tmp_path, capsys):
    path = tmp_path / f"{kind}_{mode}.tflite"
    path.write_bytes(_convert(_keras_model(kind), mode))
    rc, err = _export(path, tmp_path, capsys)
    assert rc != 0
    assert expect in err and path.name in err
    assert not (tmp_path / "out" / "c").exists()
