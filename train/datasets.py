"""Test sets for `eval` and `validate` (and calibration images for a Keras model): MNIST,
or a user's own data.

`--data` may be:

- nothing, or what `train/mnist.py` accepts (a directory of the four MNIST IDX gz files,
  Keras' `mnist.npz`): MNIST, checksum-verified;
- a directory of IDX files of the same format under other names or contents
  (Fashion-MNIST's `t10k-images-idx3-ubyte.gz`, EMNIST's
  `emnist-<split>-test-images-idx3-ubyte.gz`), or the path of such an images file: the
  same IDX reader and format checks (magic, header, counts), but no checksum, since no
  table lists theirs;
- an `.npz` with `x_test` (uint8, NxHxW or NxHxWxC) and `y_test` (N integer labels), and
  optionally `x_train` for calibration;
- a directory of PNGs by class, `DIR/<label>/*.png` (labels are the folder names: integers
  are used as they are, other names are numbered in sorted order).

Images stay uint8 pixels here; each backend applies the model's own preprocessing
(pixel/255, then its input scale and zero point: quantize/evaluate.py).

A model's input shape may pick the test set drawn from MNIST (``input_shape``): a 16x16x1
model (the zip1989 variants) gets the 16x16 split of train/zip1989.py (2,007 test digits
drawn from MNIST's test set and resized), since that, not all of MNIST shrunk, is what
its paper and the reproduction measure.
"""

from __future__ import annotations

import gzip
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lenet_edge.errors import LenetEdgeError
from lenet_edge.train import mnist

MNIST_NAME = "MNIST test set"
# IDX test files besides MNIST's own names: EMNIST's emnist-<split>-test-images-idx3-ubyte.
_IDX_TEST_IMAGES = re.compile(r"^(?:(.+)-)?(t10k|test)-images-idx3-ubyte(\.gz)?$")


@dataclass
class DataSet:
    images: np.ndarray  # uint8 (N, H, W) or (N, H, W, C)
    labels: np.ndarray  # int64 (N,)
    name: str  # for reports: "MNIST test set", "cifar_small.npz", ...
    items: str  # what one input is called in messages: "digits" (MNIST) or "images"
    source: str
    class_names: tuple[str, ...] | None = None  # PNG folders with non-integer names
    train_images: np.ndarray | None = None  # for calibration, when the source has them

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of one image."""
        shape = self.images.shape[1:]
        return (*shape, 1) if len(shape) == 2 else tuple(shape)

    def head(self, count: int | None) -> "DataSet":
        if count is None:
            return self
        return DataSet(self.images[:count], self.labels[:count], self.name, self.items,
                       self.source, self.class_names, self.train_images)


def load_test_set(data: str | Path | None = None,
                  input_shape: tuple[int, ...] | None = None) -> DataSet:
    """The test set `--data` names (see the module docstring); MNIST by default, MNIST's
    zip1989 split when ``input_shape`` (the model's, without the batch) is 16x16x1."""
    test = _load_test_set(data)
    if test.name == MNIST_NAME and _takes_zip1989(input_shape):
        return _zip1989(data)
    return test


def _takes_zip1989(input_shape) -> bool:
    from lenet_edge.train.zip1989 import SIZE

    return input_shape is not None and tuple(d for d in input_shape if d != 1) == (SIZE, SIZE)


def _mnist_dir(data: str | Path | None) -> Path | None:
    """What `load_mnist` takes for the MNIST a `--data` named (its test images file: the
    folder it is in)."""
    path = None if data is None else Path(data).expanduser()
    if path is not None and path.is_file() and path.suffix != ".npz":
        path = path.parent
    return path


def _zip1989(data) -> DataSet:
    from lenet_edge.train.zip1989 import NAME, load_zip1989

    split = load_zip1989(_mnist_dir(data))
    images, labels = split["test"]
    return DataSet(images, labels.astype(np.int64), NAME, "digits",
                   str(mnist.resolve_source(_mnist_dir(data))), train_images=split["train"][0])


def _load_test_set(data: str | Path | None = None) -> DataSet:
    if data is None:
        return _mnist(None)
    path = Path(data).expanduser()
    if path.is_file():
        if path.suffix == ".npz":
            return _mnist(path) if path.name == mnist.NPZ_NAME else _npz(path)
        if _IDX_TEST_IMAGES.match(path.name):
            return _idx(path)
        raise LenetEdgeError(f"--data {path}: not an .npz or IDX images file")
    if path.is_dir():
        if mnist._has_idx(path) or (path / mnist.NPZ_NAME).is_file():
            return _mnist_or_idx(path)
        idx = sorted(p for p in path.iterdir() if _IDX_TEST_IMAGES.match(p.name))
        if len(idx) == 1:
            return _idx(idx[0])
        if len(idx) > 1:
            raise LenetEdgeError(f"--data {path} holds several IDX test sets "
                                 f"({', '.join(p.name for p in idx)}); give the images file "
                                 "of the one to use")
        if any(p.is_dir() and any(p.glob("*.png")) for p in path.iterdir()):
            return _png_folders(path)
    return _mnist(path)  # MNIST's own messages for a missing or incomplete directory


def load_calibration_images(data: str | Path | None = None,
                            input_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """uint8 images to calibrate a Keras model's int8 conversion: MNIST's training set by
    default (its zip1989 split's for a 16x16x1 ``input_shape``), else the training images
    of `--data` when it has them, else its test images."""
    test = load_test_set(data, input_shape)
    if test.train_images is not None:
        return test.train_images
    if test.name == MNIST_NAME:  # verified MNIST: its own (verified) training split
        return mnist.load_mnist("train", _mnist_dir(data))[0]
    return test.images


def _mnist(path: Path | None) -> DataSet:
    images, labels = mnist.load_mnist("test", path)
    source = str(mnist.resolve_source(path))
    return DataSet(images, labels.astype(np.int64), MNIST_NAME, "digits", source)


def _mnist_or_idx(path: Path) -> DataSet:
    """MNIST's file names: MNIST when the checksums match, otherwise the same format with
    other contents (Fashion-MNIST uses the same names)."""
    try:
        return _mnist(path)
    except LenetEdgeError as exc:
        if "checksum mismatch" not in str(exc) and "MNIST has" not in str(exc):
            raise
    return _idx(path / mnist.FILES["test", "images"].name)


def _idx(images_path: Path) -> DataSet:
    labels_path = images_path.with_name(images_path.name.replace("images-idx3", "labels-idx1"))
    if not labels_path.is_file():
        raise LenetEdgeError(f"{images_path}: no labels file {labels_path.name} beside it")
    images = mnist.parse_idx(_read(images_path), mnist.IMAGE_MAGIC, str(images_path))
    labels = mnist.parse_idx(_read(labels_path), mnist.LABEL_MAGIC, str(labels_path))
    _check_pair(images, labels, str(images_path.parent))
    train = None
    train_path = images_path.with_name(re.sub(r"(t10k|test)-images", lambda m: "train-images",
                                              images_path.name))
    if train_path != images_path and train_path.is_file():
        train = mnist.parse_idx(_read(train_path), mnist.IMAGE_MAGIC, str(train_path))
    if _is_mnist_test(images, labels):  # MNIST's test files on their own
        return DataSet(np.ascontiguousarray(images), labels.astype(np.int64), MNIST_NAME,
                       "digits", str(images_path), train_images=train)
    family = _IDX_TEST_IMAGES.match(images_path.name).group(1)
    name = f"{family or 'IDX'} test set {images_path.name} (no checksum: not MNIST's files)"
    return DataSet(np.ascontiguousarray(images), labels.astype(np.int64), name, "images",
                   str(images_path), train_images=train)


def _is_mnist_test(images: np.ndarray, labels: np.ndarray) -> bool:
    spec_images, spec_labels = mnist.FILES["test", "images"], mnist.FILES["test", "labels"]
    return (images.shape == (spec_images.count, 28, 28) and labels.shape == (spec_labels.count,)
            and mnist.content_sha256(images, mnist.IMAGE_MAGIC) == spec_images.raw_sha256
            and mnist.content_sha256(labels, mnist.LABEL_MAGIC) == spec_labels.raw_sha256)


def _read(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise LenetEdgeError(f"{path} cannot be read ({exc or type(exc).__name__}); it is "
                             "truncated or corrupt") from None


def _npz(path: Path) -> DataSet:
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in ("x_test", "y_test") if k not in npz.files]
            if missing:
                raise LenetEdgeError(f"{path}: no array {' or '.join(missing)} (a test set .npz "
                                     "holds x_test, uint8 NxHxW or NxHxWxC, and y_test, N labels)")
            images, labels = npz["x_test"], npz["y_test"]
            train = npz["x_train"] if "x_train" in npz.files else None
    except LenetEdgeError:
        raise
    except (OSError, ValueError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
        raise LenetEdgeError(f"{path} is not a readable .npz file ({exc or type(exc).__name__})"
                             ) from None
    if images.dtype != np.uint8:
        raise LenetEdgeError(f"{path}: x_test is {images.dtype}; expected uint8 pixels 0..255")
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if not np.issubdtype(labels.dtype, np.integer):
        raise LenetEdgeError(f"{path}: y_test is {labels.dtype}; expected integer class labels")
    _check_pair(images, labels, str(path))
    if train is not None and (train.dtype != np.uint8 or train.shape[1:] != images.shape[1:]):
        raise LenetEdgeError(f"{path}: x_train ({train.dtype} {train.shape}) does not match "
                             f"x_test ({images.dtype} {images.shape})")
    return DataSet(np.ascontiguousarray(images), labels.astype(np.int64), path.name, "images",
                   str(path), train_images=train)


def _png_folders(path: Path) -> DataSet:
    from PIL import Image, UnidentifiedImageError

    folders = sorted(p for p in path.iterdir() if p.is_dir() and any(p.glob("*.png")))
    numeric = all(p.name.isdigit() for p in folders)
    images, labels = [], []
    mode = None
    for k, folder in enumerate(folders):
        for png in sorted(folder.glob("*.png")):
            try:
                with Image.open(png) as im:
                    im_mode = "L" if im.mode in ("L", "1", "I;16", "I") else "RGB"
                    mode = mode or im_mode
                    if im_mode != mode:
                        raise LenetEdgeError(f"{png} is {im.mode}, the images before it "
                                             f"{mode}: a test set is all grayscale or all RGB")
                    array = np.asarray(im.convert(mode), dtype=np.uint8)
            except (OSError, UnidentifiedImageError) as exc:
                raise LenetEdgeError(f"{png} is not a readable PNG ({exc})") from None
            if images and array.shape != images[0].shape:
                raise LenetEdgeError(f"{png} is {array.shape[1]}x{array.shape[0]}, the images "
                                     f"before it {images[0].shape[1]}x{images[0].shape[0]}: all "
                                     "images of a test set have one size")
            images.append(array)
            labels.append(int(folder.name) if numeric else k)
    return DataSet(np.stack(images), np.array(labels, dtype=np.int64),
                   f"PNG folders in {path.name}/", "images", str(path),
                   class_names=None if numeric else tuple(p.name for p in folders))


def _check_pair(images: np.ndarray, labels: np.ndarray, where: str) -> None:
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3, 4)):
        raise LenetEdgeError(f"{where}: images have shape {images.shape}; expected NxHxW or "
                             "NxHxWxC (C = 1, 3 or 4)")
    if labels.ndim != 1:
        raise LenetEdgeError(f"{where}: labels have shape {labels.shape}; expected (N,)")
    if len(images) != len(labels):
        raise LenetEdgeError(f"{where}: {len(images)} images but {len(labels)} labels")
    if not len(images):
        raise LenetEdgeError(f"{where}: the test set is empty")
    if labels.min() < 0:
        raise LenetEdgeError(f"{where}: negative label {int(labels.min())}")
