"""The names the reader gives the enum fields of builtin option tables (shared by
reader.py and the option tables of codegen/ops/): an unknown code keeps a name that no
check accepts, so validate refuses it."""

from __future__ import annotations

from tflite.ActivationFunctionType import ActivationFunctionType
from tflite.Padding import Padding

_ACT_NAMES = {v: k for k, v in vars(ActivationFunctionType).items() if not k.startswith("_")}
_PADDING_NAMES = {v: k for k, v in vars(Padding).items() if not k.startswith("_")}


def activation(o) -> str:
    """The fused activation of an options table: "NONE", "RELU", ... or "?"."""
    return _ACT_NAMES.get(o.FusedActivationFunction(), "?")


def padding(o) -> str:
    """The padding of an options table: "SAME", "VALID" or the unknown code."""
    return _PADDING_NAMES.get(o.Padding(), str(o.Padding()))


def convolution(o) -> dict:
    """What Conv2DOptions and DepthwiseConv2DOptions share."""
    return {
        "padding": padding(o),
        "stride": (o.StrideH(), o.StrideW()),
        "dilation": (o.DilationHFactor(), o.DilationWFactor()),
        "activation": activation(o),
    }
