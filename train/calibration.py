"""Which images calibrate an int8 conversion: one rule, used by `quantize` (the converter's
representative set) and by quantization-aware training (train/qat.py), which must see the
activation ranges the converter will pick.

A fixed sample of training images plus an all-0 and an all-255 image, so the observed input
range is exactly [0, 1] and the input gets scale 1/255, zero point -128 (pixel - 128).
"""

from __future__ import annotations

import numpy as np

CALIBRATION_IMAGES = 1000


def calibration_images(train_images: np.ndarray, count: int = CALIBRATION_IMAGES,
                       seed: int = 0) -> np.ndarray:
    """A fixed sample of training images plus an all-0 and an all-255 image (uint8)."""
    shape = train_images.shape[1:]
    extremes = np.stack([np.zeros(shape, np.uint8), np.full(shape, 255, np.uint8)])
    return np.concatenate([extremes, train_images[calibration_pick(len(train_images), count,
                                                                   seed)]])


def calibration_pick(total: int, count: int = CALIBRATION_IMAGES, seed: int = 0) -> np.ndarray:
    """Sorted indices of the training images that `calibration_images` takes (the rest can
    serve as a validation set the conversion never saw)."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(total, size=min(count, total), replace=False))
