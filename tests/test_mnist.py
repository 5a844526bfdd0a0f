"""MNIST loading: the resolution chain, both file formats, and a clear error for every bad input."""

import gzip
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lenet_edge.errors import LenetEdgeError
from lenet_edge.train import mnist
from lenet_edge.train.mnist import FILES, load_mnist, resolve_source

TEST_IMAGES = FILES["test", "images"].name
TEST_LABELS = FILES["test", "labels"].name


@pytest.fixture(scope="session")
def real_dir():
    """The directory the suite's MNIST comes from (LENET_EDGE_DATA in CI)."""
    return resolve_source()


@pytest.fixture
def data_copy(tmp_path, real_dir):
    """A directory with all four files (symlinks), whose test files a test may replace."""
    for spec in FILES.values():
        (tmp_path / spec.name).symlink_to(Path(real_dir) / spec.name)
    return tmp_path


def replace(directory, name, raw=None, gz=None):
    (directory / name).unlink()
    (directory / name).write_bytes(gz if gz is not None else gzip.compress(raw, compresslevel=1))


def raw_of(directory, name):
    return gzip.decompress((directory / name).read_bytes())


def expect_error(match, *args, **kwargs):
    with pytest.raises(LenetEdgeError, match=match):
        load_mnist(*args, **kwargs)


def test_good_data_has_the_published_shapes_and_first_labels(mnist_test):
    images, labels = mnist_test
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert images.min() == 0 and images.max() == 255


def test_train_split_from_explicit_dir(real_dir):
    images, labels = load_mnist("train", real_dir)
    assert images.shape == (60000, 28, 28)
    assert labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


def test_unknown_split():
    expect_error("unknown MNIST split", "validation")


def test_keras_npz_file_and_directory(tmp_path, mnist_test, real_dir):
    train_images, train_labels = load_mnist("train", real_dir)
    npz = tmp_path / "mnist.npz"
    np.savez(npz, x_train=train_images, y_train=train_labels,
             x_test=mnist_test[0], y_test=mnist_test[1])
    for source in (npz, tmp_path):
        images, labels = load_mnist("test", source)
        assert np.array_equal(images, mnist_test[0]) and np.array_equal(labels, mnist_test[1])


def test_npz_that_is_not_mnist(tmp_path):
    np.savez(tmp_path / "mnist.npz", something=np.zeros(3))
    expect_error("not Keras' mnist.npz", "test", tmp_path / "mnist.npz")
    (tmp_path / "mnist.npz").write_bytes(b"PK\x03\x04 broken zip")
    expect_error("not a readable .npz", "test", tmp_path / "mnist.npz")


def test_environment_variable_then_explicit_dir_wins(monkeypatch, tmp_path, real_dir):
    monkeypatch.setenv("LENET_EDGE_DATA", str(real_dir))
    assert resolve_source() == Path(real_dir)
    # An explicit --data that is wrong is an error, never a silent fall-back to the env.
    expect_error("does not exist", "test", tmp_path / "nowhere")
    monkeypatch.setenv("LENET_EDGE_DATA", str(tmp_path / "nowhere"))
    expect_error(r"\$LENET_EDGE_DATA", "test")


def test_missing_file(data_copy):
    (data_copy / TEST_LABELS).unlink()
    expect_error(f"missing .*{TEST_LABELS}", "test", data_copy)


def test_truncated_gzip(data_copy):
    gz = (data_copy / TEST_IMAGES).read_bytes()
    replace(data_copy, TEST_IMAGES, gz=gz[: len(gz) // 2])
    expect_error("not a valid gzip file .*truncated or corrupt", "test", data_copy)


def test_corrupt_gzip(data_copy):
    gz = bytearray((data_copy / TEST_LABELS).read_bytes())
    gz[len(gz) // 2] ^= 0xFF  # a flipped byte in the deflate stream
    replace(data_copy, TEST_LABELS, gz=bytes(gz))
    expect_error("not a valid gzip file", "test", data_copy)
    replace(data_copy, TEST_LABELS, gz=b"this is not gzip at all")
    expect_error("not a valid gzip file", "test", data_copy)


def test_wrong_idx_magic(data_copy):
    # A label file where an image file belongs.
    replace(data_copy, TEST_IMAGES, raw=raw_of(data_copy, TEST_LABELS))
    expect_error("wrong IDX magic 0x00000801, expected 0x00000803", "test", data_copy)


def test_header_count_does_not_match_data(data_copy):
    raw = raw_of(data_copy, TEST_IMAGES)
    replace(data_copy, TEST_IMAGES, raw=raw[:-784 * 10])  # ten images short
    expect_error("header promises 10000x28x28 = 7840000 bytes .* holds 7832160", "test", data_copy)


def test_image_and_label_counts_differ(data_copy):
    raw = raw_of(data_copy, TEST_LABELS)
    shorter = struct.pack(">II", 0x801, 9999) + raw[8:-1]
    replace(data_copy, TEST_LABELS, raw=shorter)
    expect_error("10000 test images but 9999 labels", "test", data_copy)


def test_label_out_of_range(data_copy):
    raw = bytearray(raw_of(data_copy, TEST_LABELS))
    raw[8 + 123] = 12
    replace(data_copy, TEST_LABELS, raw=bytes(raw))
    expect_error("label 12 at index 123 is out of range 0..9", "test", data_copy)


def test_checksum_mismatch(data_copy):
    raw = bytearray(raw_of(data_copy, TEST_IMAGES))
    raw[16 + 400] ^= 0x01  # one pixel of the first image, structure intact
    replace(data_copy, TEST_IMAGES, raw=bytes(raw))
    expect_error("checksum mismatch for the test images", "test", data_copy)


@pytest.fixture
def empty_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("LENET_EDGE_DATA", raising=False)
    monkeypatch.setenv("LENET_EDGE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_download_into_cache_from_a_mirror(monkeypatch, empty_cache, real_dir, mnist_test):
    # A file:// mirror exercises the real download path (fetch, md5, atomic write).
    monkeypatch.setattr(mnist, "MIRRORS", [Path(real_dir).resolve().as_uri() + "/"])
    images, labels = load_mnist("test")
    assert np.array_equal(labels, mnist_test[1])
    assert sorted(p.name for p in empty_cache.iterdir()) == sorted(f.name for f in FILES.values())
    # Now cached: no mirror needed any more.
    monkeypatch.setattr(mnist, "MIRRORS", [])
    assert np.array_equal(load_mnist("test")[0], images)


def test_download_checksum_mismatch(monkeypatch, empty_cache, tmp_path):
    bad = tmp_path / "bad-mirror"
    bad.mkdir()
    for spec in FILES.values():
        (bad / spec.name).write_bytes(gzip.compress(b"not mnist"))
    monkeypatch.setattr(mnist, "MIRRORS", [bad.as_uri() + "/"])
    expect_error("wrong checksum", "test")
    assert not any(empty_cache.glob("*.gz")), "a file that failed its md5 must not be kept"


def test_no_network(monkeypatch, empty_cache):
    # Port 9 on localhost: connection refused, as with no network, without waiting.
    monkeypatch.setattr(mnist, "MIRRORS", ["http://127.0.0.1:9/mnist/"])
    with pytest.raises(LenetEdgeError) as info:
        load_mnist("test")
    message = str(info.value)
    assert "no network" in message and "--data DIR" in message and "LENET_EDGE_DATA" in message


def test_cli_reports_bad_data_without_traceback(data_copy):
    (data_copy / TEST_IMAGES).unlink()
    env = dict(os.environ, LENET_EDGE_DATA=str(data_copy))
    result = subprocess.run([sys.executable, "-m", "lenet_edge", "train", "--epochs", "1"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode != 0
    assert result.stderr.startswith("error: MNIST file(s) missing")
    assert "Traceback" not in result.stderr
