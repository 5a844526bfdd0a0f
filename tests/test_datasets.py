"""Test sets other than MNIST for eval and validate: IDX files without MNIST's checksum
(Fashion-MNIST, EMNIST), .npz, PNG folders by class; and their clear errors."""

from __future__ import annotations

import gzip
import json
import struct

import numpy as np
import pytest

from lenet_edge.cli import main
from lenet_edge.errors import LenetEdgeError
from lenet_edge.train.datasets import MNIST_NAME, load_calibration_images, load_test_set
from lenet_edge.train.mnist import load_mnist


def _idx(path, array, gz=True):
    magic = 0x803 if array.ndim == 3 else 0x801
    raw = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + \
        np.ascontiguousarray(array, np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw, compresslevel=1, mtime=0) if gz else raw)


def _random_set(n, seed, classes=10, shape=(28, 28)):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, *shape), dtype=np.uint8),
            rng.integers(0, classes, n).astype(np.uint8))


def test_fashion_mnist_style_idx_loads_without_checksum(tmp_path):
    """MNIST's file names with other contents (as Fashion-MNIST ships): same reader and
    format checks, no checksum; training MNIST from it still refuses (checksums)."""
    x, y = _random_set(40, 0)
    xt, yt = _random_set(60, 1)
    _idx(tmp_path / "t10k-images-idx3-ubyte.gz", x)
    _idx(tmp_path / "t10k-labels-idx1-ubyte.gz", y)
    _idx(tmp_path / "train-images-idx3-ubyte.gz", xt)
    _idx(tmp_path / "train-labels-idx1-ubyte.gz", yt)
    data = load_test_set(tmp_path)
    assert np.array_equal(data.images, x) and np.array_equal(data.labels, y)
    assert "no checksum" in data.name and data.items == "images"
    for where in (tmp_path, tmp_path / "t10k-images-idx3-ubyte.gz"):
        assert np.array_equal(load_calibration_images(where), xt)
    with pytest.raises(LenetEdgeError, match="MNIST has 60000"):
        load_mnist("train", tmp_path)
    # Format checks still apply: a wrong magic is an error, not silently other data.
    _idx(tmp_path / "t10k-labels-idx1-ubyte.gz", x)  # an images file where labels belong
    with pytest.raises(LenetEdgeError, match="wrong IDX magic"):
        load_test_set(tmp_path)


def test_emnist_idx_by_file_or_folder(tmp_path):
    x, y = _random_set(30, 2, classes=27)
    _idx(tmp_path / "emnist-letters-test-images-idx3-ubyte", x, gz=False)
    _idx(tmp_path / "emnist-letters-test-labels-idx1-ubyte", y, gz=False)
    for where in (tmp_path, tmp_path / "emnist-letters-test-images-idx3-ubyte"):
        data = load_test_set(where)
        assert np.array_equal(data.labels, y) and data.name.startswith("emnist-letters test set")
    _idx(tmp_path / "emnist-digits-test-images-idx3-ubyte.gz", x)
    with pytest.raises(LenetEdgeError, match="several IDX test sets"):
        load_test_set(tmp_path)


def test_mnist_stays_mnist(mnist_test, tmp_path):
    data = load_test_set(None)
    assert data.name == MNIST_NAME and data.items == "digits"
    assert np.array_equal(data.images, mnist_test[0])
    # MNIST's test files alone (no training files beside them) are still recognised.
    _idx(tmp_path / "t10k-images-idx3-ubyte.gz", mnist_test[0])
    _idx(tmp_path / "t10k-labels-idx1-ubyte.gz", mnist_test[1])
    alone = load_test_set(tmp_path)
    assert alone.name == MNIST_NAME and np.array_equal(alone.labels, mnist_test[1])


def test_npz_and_png_folders(tmp_path):
    from PIL import Image

    x, y = _random_set(12, 3, classes=2, shape=(8, 6, 3))
    np.savez(tmp_path / "mine.npz", x_test=x, y_test=y.astype(np.int64)[:, None])
    data = load_test_set(tmp_path / "mine.npz")
    assert data.image_shape == (8, 6, 3) and data.labels.tolist() == y.tolist()
    for k, name in enumerate(("cat", "dog")):
        (tmp_path / "png" / name).mkdir(parents=True)
        for i in np.flatnonzero(y == k):
            Image.fromarray(x[i]).save(tmp_path / "png" / name / f"{i:03d}.png")
    data = load_test_set(tmp_path / "png")
    order = np.concatenate([np.flatnonzero(y == 0), np.flatnonzero(y == 1)])
    assert np.array_equal(data.images, x[order]) and data.class_names == ("cat", "dog")
    assert data.labels.tolist() == sorted(y.tolist())

    Image.fromarray(x[0][:4]).save(tmp_path / "png" / "dog" / "zzz.png")
    with pytest.raises(LenetEdgeError, match="all images of a test set have one size"):
        load_test_set(tmp_path / "png")
    np.savez(tmp_path / "floats.npz", x_test=x.astype(np.float32), y_test=y)
    with pytest.raises(LenetEdgeError, match="expected uint8"):
        load_test_set(tmp_path / "floats.npz")
    np.savez(tmp_path / "nolabels.npz", x_test=x)
    with pytest.raises(LenetEdgeError, match="no array y_test"):
        load_test_set(tmp_path / "nolabels.npz")


def test_eval_takes_an_npz_and_refuses_images_the_model_cannot_take(tmp_path, mnist_test,
                                                                   capsys):
    images, labels = mnist_test[0][:40], mnist_test[1][:40]
    np.savez(tmp_path / "digits.npz", x_test=images[..., None], y_test=labels)
    out = tmp_path / "eval.json"
    assert main(["eval", "--backend", "tflm", "--backend", "c", "--data",
                 str(tmp_path / "digits.npz"), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["data"] == "digits.npz" and result["images"] == 40
    assert result["backends"]["c"]["bytes_equal_tflm"] == 40
    assert result["backends"]["tflm"]["accuracy"] > 0.9
    np.savez(tmp_path / "rgb.npz", x_test=np.zeros((3, 28, 28, 3), np.uint8),
             y_test=np.zeros(3, np.int64))
    assert main(["eval", "--backend", "tflm", "--data", str(tmp_path / "rgb.npz")]) == 2
    err = capsys.readouterr().err
    assert "the model takes 28x28x1 inputs, but rgb.npz has 28x28x3 images" in err
