"""Moved to `lenet_edge.quantmath` (shared by quantize/, codegen/ and the CMSIS-NN driver):
this name stays so older imports keep working."""

from lenet_edge.quantmath import *  # noqa: F401,F403
from lenet_edge.quantmath import __all__  # noqa: F401
