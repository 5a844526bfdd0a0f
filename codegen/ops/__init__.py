"""One op, one place: a module per op holds everything the generator knows about it (the
options table the reader decodes, the input counts and checks of what is implemented
exactly, its typed kernel parameters and its lowering), with its kernel template beside it
(`ops/<kernel>.c.j2`, rendered as `kernels/<kernel>.c.j2`), as TFLM keeps conv.cc,
conv_common.cc and conv.h together.

Ops move here one at a time (MEAN first); the others still live in reader.py,
validate.py, lower.py and templates/kernels/.
"""

from __future__ import annotations


class Unsupported(Exception):
    """A form of an op the generator does not implement exactly; validate.validate_graph
    turns it into one LenetEdgeError naming the model and the op."""
