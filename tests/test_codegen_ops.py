"""The op registry (codegen/ops): each module offers what reader, validate and lower ask of
it (typed, frozen kernel parameters included), and every op kind is registered once and
reaches the reader's option tables, validate's input counts and its list of ops."""

from __future__ import annotations

import dataclasses

from lenet_edge.codegen import ops, reader, validate
from lenet_edge.codegen.ops import fusion


def test_every_module_offers_the_op_interface():
    for module in ops.MODULES:
        name = module.__name__
        assert module.KINDS and set(module.OPTIONS) <= set(module.KINDS), name
        assert callable(module.check) and callable(module.lower), name
        if module.OPTIONS:
            assert callable(module.read_options), name
        counts, optional = module.INPUTS
        assert counts and all(n >= 1 for n in counts) and all(i < max(counts) for i in optional)
        params = [c for c in vars(module).values()
                  if isinstance(c, type) and dataclasses.is_dataclass(c)
                  and c.__module__ == name and not c.__name__.startswith("_")]
        assert params and all(c.__dataclass_params__.frozen for c in params), name
        # An op that absorbs what follows it lowers the whole group (lower.py asks fusion).
        fuses = getattr(module, "FUSES", ())
        assert set(fuses) <= {fusion.TABLE, fusion.POOL, fusion.SUBSAMPLE}, name
        assert not fuses or callable(module.lower_group), name


def test_each_kind_is_registered_once_and_reaches_reader_and_validate():
    kinds = [kind for module in ops.MODULES for kind in module.KINDS]
    assert len(kinds) == len(set(kinds)) == len(ops.BY_KIND)
    for kind, module in ops.BY_KIND.items():
        assert kind in validate.SUPPORTED_OPS
        assert validate.INPUTS[kind] == module.INPUTS
        assert reader.OPTIONS_OF.get(kind) == module.OPTIONS.get(kind)

