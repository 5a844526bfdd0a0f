"""The int8 output's range from where the argmax is decided (`quantize --argmax-range`).

The converter quantizes the output (the logits) over the whole range the calibration images
reach, lowest logit to highest. Most of that range decides nothing: a logit below every
image's highest logit never wins, so the step (range / 255) is coarser than the margins
that matter and close digits round to ties (zip1989-modern: step 0.27, 6 of its 34 int8
errors were ties). With ``--argmax-range`` the output covers only
[lowest top logit, highest logit] of the calibration images' float logits (widened to hold
0, as every int8 range must: the zero point is an int8): logits below it saturate at -128
(none of them would have won on a calibration image), the top ones get a finer step.

This only changes the output tensor's scale and zero point, in place in the .tflite: the
last op's int32 bias and accumulator keep their scale (input scale x weight scale), and
TFLM, the TFLite interpreter and the generated C all derive the output requantization from
these tensor parameters, so the three stay bit-exact with one another.
"""

from __future__ import annotations

import numpy as np

from lenet_edge.errors import LenetEdgeError


def argmax_range(logits: np.ndarray) -> tuple[float, float]:
    """[lowest per-image top logit, highest logit] of float logits (N, classes)."""
    return float(logits.max(axis=1).min()), float(logits.max())


def int8_params(low: float, high: float) -> tuple[float, int]:
    """Scale and zero point of the int8 range [low, high] widened to hold 0."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = (high - low) / 255.0
    if scale <= 0:
        raise LenetEdgeError(f"output range [{low}, {high}] is empty")
    zero_point = int(np.clip(round(-128 - low / scale), -128, 127))
    return scale, zero_point


def set_output_quantization(model_bytes: bytes, scale: float, zero_point: int) -> bytes:
    """The same .tflite with its (one) output tensor's scale and zero point replaced in
    place (same length: no other byte changes)."""
    import tflite

    buf = bytearray(model_bytes)
    model = tflite.Model.GetRootAsModel(buf, 0)
    graph = model.Subgraphs(0)
    out = graph.Tensors(graph.Outputs(0))
    quant = out.Quantization()
    if quant is None or quant.ScaleLength() != 1 or quant.ZeroPointLength() != 1:
        raise LenetEdgeError("the output tensor is not per-tensor quantized")
    scales, zero_points = quant.ScaleAsNumpy(), quant.ZeroPointAsNumpy()
    # Views into buf: each must be the output's own vector (a flatbuffer may share equal
    # vectors between tables), or the patch would change other tensors too.
    for name, mine in (("Scale", scales), ("ZeroPoint", zero_points)):
        if sum(_address(graph.Tensors(i), name) == _address_of(mine)
               for i in range(graph.TensorsLength())) != 1:
            raise LenetEdgeError(f"the output tensor's {name.lower()} is shared with other "
                                 "tensors")
    scales[0] = np.float32(scale)
    zero_points[0] = zero_point
    return bytes(buf)


def _address_of(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


def _address(tensor, name: str) -> int | None:
    quant = tensor.Quantization()
    if quant is None or not getattr(quant, f"{name}Length")():
        return None
    return _address_of(getattr(quant, f"{name}AsNumpy")())
