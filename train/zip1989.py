"""The 1989 zip-code net's data: a USPS-sized 16x16 split drawn from MNIST.

USPS (LeCun et al. 1989: 7,291 training and 2,007 test digits, 16x16, in [-1, 1]) is not
public in that form. Like Karpathy's reproduction (github.com/karpathy/lecun1989-repro,
prepro.py), draw 7,291 training images from MNIST's training set and 2,007 test images from
its test set with a fixed seed, and resize each from 28x28 to 16x16 by bilinear
interpolation (torch's F.interpolate, align_corners=False, no antialiasing: the formula in
``resize_bilinear``).

The split stays uint8 pixels (the bilinear value rounded to the nearest integer), like
every other data set here: the model's input is pixel/255, and the zip1989 models map it to
the paper's [-1, 1] range (background -1) inside their first layer (train/models.py), so
the int8 input is the converter's ``pixel - 128`` as for every LeNet.
"""

from __future__ import annotations

import numpy as np

SIZE = 16
COUNTS = {"train": 7291, "test": 2007}
SEED = 1337  # the reproduction's seed; numpy's legacy generator, train drawn first
NAME = "zip1989 split (MNIST drawn and resized to 16x16)"


def resize_bilinear(images: np.ndarray, size: int = SIZE) -> np.ndarray:
    """uint8 (N, H, W) -> uint8 (N, size, size): bilinear with half-pixel centres, source
    coordinates clamped at the border (torch's interpolate, align_corners=False), rounded."""
    images = np.asarray(images, dtype=np.float64)
    _, h, w = images.shape

    def axis(n_in):
        src = np.maximum((np.arange(size) + 0.5) * (n_in / size) - 0.5, 0.0)
        lo = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, src - lo

    y0, y1, fy = axis(h)
    x0, x1, fx = axis(w)
    rows = (images[:, y0, :] * (1 - fy)[None, :, None] + images[:, y1, :] * fy[None, :, None])
    out = rows[:, :, x0] * (1 - fx)[None, None, :] + rows[:, :, x1] * fx[None, None, :]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def indices(total: dict[str, int]) -> dict[str, np.ndarray]:
    """Which MNIST images form each split: a permutation per split from one seeded generator
    (train first), its first COUNTS[split] entries."""
    rng = np.random.RandomState(SEED)
    return {split: rng.permutation(total[split])[:COUNTS[split]] for split in ("train", "test")}


def make_split(mnist: dict[str, tuple[np.ndarray, np.ndarray]]
               ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{split: (uint8 images 28x28, labels)} of MNIST -> the same for the 16x16 split."""
    picked = indices({split: len(mnist[split][0]) for split in mnist})
    return {split: (resize_bilinear(mnist[split][0][idx]), mnist[split][1][idx])
            for split, idx in picked.items()}


def load_zip1989(data_dir=None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The 16x16 split of the (verified) MNIST that ``data_dir`` resolves to."""
    from lenet_edge.train.mnist import load_mnist

    return make_split({split: load_mnist(split, data_dir) for split in ("train", "test")})
