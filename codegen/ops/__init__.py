"""One op, one place: a module per op holds everything the generator knows about it, with
its kernel template beside it (`ops/<kernel>.c.j2`, rendered as `kernels/<kernel>.c.j2`,
a kernel variant in a file of its own: `<kernel>_<variant>.c.j2`), as TFLM keeps conv.cc,
conv_common.cc and conv.h together. A module offers:

- ``KINDS``: the builtin operators it implements;
- ``OPTIONS`` ({kind: builtin options table TFLM's parser reads}) and
  ``read_options(kind, table) -> dict`` (the reader's decoding of that table);
- ``INPUTS``: (input counts TFLM's kernel accepts, indices that may be -1);
- ``check(graph, op)``: raise `Unsupported` for a form not implemented exactly (the
  generic checks of validate.py run first);
- a frozen dataclass of the kernel's parameters and ``lower(graph, op) -> list[Step]``;
- optionally ``FUSES`` (what its step may absorb after it, `fusion.TABLE` / `fusion.POOL` /
  `fusion.SUBSAMPLE`)
  with ``lower_group(graph, group, optimize) -> list[Step]``, which lower.py then calls
  with the group `fusion.fusable_group` gives (CONV_2D, FULLY_CONNECTED).

Registering an op is one line in ``MODULES``: the reader, validate and lower look ops up
in ``BY_KIND`` (validate's refusal lists the supported kinds in this order). `fusion` is
not an op: the fusion rules the fusing ops share.
"""

from __future__ import annotations

from lenet_edge.codegen.checks import Unsupported
from lenet_edge.codegen.ops import (
    binary,
    concatenation,
    conv2d,
    depthwise_conv2d,
    fully_connected,
    lut,
    mean,
    pad,
    pool,
    reshape,
    softmax,
)

MODULES = (conv2d, fully_connected, pool, reshape, pad, lut, softmax, binary, depthwise_conv2d,
           mean, concatenation)
BY_KIND = {kind: module for module in MODULES for kind in module.KINDS}

__all__ = ["BY_KIND", "MODULES", "Unsupported"]
