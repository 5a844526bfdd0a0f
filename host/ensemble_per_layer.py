"""`validate --per-layer K` on an ensemble (Boosted LeNet-4): every tensor its firmware
traces for the first K digits against TFLM's tensor of the right net.

The firmware's TRACE layers are boosted_invoke_traced's: net 1's traced tensors, then net
2's and net 3's (codegen/ensemble.py); each tensor index is into that net's own .tflite,
and a layer an early exit did not reach answers tensor -1 with no data. Which net each
layer belongs to is read from what the code generator wrote (``traced_layers``), never
worked out again here. A digit is identical when every layer the device ran equals TFLM's
tensor and the layers it did not run are exactly those the TFLM ensemble's early exit
skips (quantize/ensemble.py's tflm_ensemble: the rule of lenet_edge/ensemble.py), so a
wrong exit is caught as surely as a wrong value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from lenet_edge.ensemble import ENSEMBLE_JSON, NETS
from lenet_edge.errors import LenetEdgeError
from lenet_edge.host.ensemble_refs import EXPORT_COPY
from lenet_edge.layout import ExportLayout

NOT_RUN = -1  # the tensor index of a layer the early exit did not reach (PROTOCOL.md)


@dataclass(frozen=True)
class TracedLayer:
    net: int  # 1..3
    tensor_index: int  # in that net's own .tflite
    size: int


def traced_layers(ensemble) -> tuple[list[TracedLayer], str]:
    """The firmware's TRACE layers in order, and where they were read: the per-net
    ``traced`` lists of the export's export_report.json (written by codegen/ensemble.py
    with the header's TRACED_TENSOR_NETS) when ``ensemble`` is an export's copy of its
    ensemble; otherwise (an ensemble folder validated at --port) the code generator's own
    traced tensors of each net (generate_c, as export_ensemble calls it). Either way the
    device's answers are checked against them (indices and count), so a firmware built
    otherwise is refused rather than compared wrongly."""
    folder = ensemble.folder
    layout = ExportLayout(folder.parent)
    if folder.name == EXPORT_COPY and (layout.c_dir / ENSEMBLE_JSON).is_file() \
            and layout.report.is_file():
        try:
            report = json.loads(layout.report.read_text())
            if report.get("kind") == "ensemble" and report.get("model_sha256") == ensemble.hash:
                nets = report["nets"]
                if len(nets) == NETS:
                    return ([TracedLayer(k + 1, int(t["index"]), int(t["size"]))
                             for k, net in enumerate(nets) for t in net["traced"]],
                            str(layout.report))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a damaged or older report: the code generator says the same
    from lenet_edge.codegen.generate import generate_c

    layers = []
    for k, model in enumerate(ensemble.models):
        library = generate_c(model, ensemble.meta["nets"][k])
        layers += [TracedLayer(k + 1, t, size) for t, size in library.traced_tensors]
    return layers, "the code generator's traced tensors of each net (no export beside the ensemble)"


def ensemble_per_layer(session, files, inputs: np.ndarray, console) -> dict:
    """validate's ``per_layer`` section for an ensemble (the single model's shape, each
    layer naming its net; ``first_difference`` may be a wrong exit: ``element`` None)."""
    from lenet_edge.host.references import layer_names, tensor_difference, tensor_names
    from lenet_edge.quantize.ensemble import tflm_ensemble
    from lenet_edge.quantize.tflm import TflmModel

    ensemble = files.ensemble
    layers, source = traced_layers(ensemble)
    device_layers = session.info().int("traced_tensors")
    if device_layers != len(layers):
        raise LenetEdgeError(
            f"the device traces {device_layers} tensors, the ensemble's export {len(layers)} "
            f"({source}): the firmware was not built from this export")
    paths = [ensemble.folder / name for name in ensemble.meta["nets"]]
    names = [tensor_names(p) for p in paths]
    short = [layer_names(p) for p in paths]
    refs = [TflmModel(model, preserve_all_tensors=True) for model in ensemble.models]
    _, nets_run, _ = tflm_ensemble(ensemble, inputs)  # the TFLM rule's early exits

    def label(layer: TracedLayer) -> dict:
        k = layer.net - 1
        return {"net": layer.net, "tensor_index": layer.tensor_index,
                "tensor_name": names[k].get(layer.tensor_index, "?"),
                "layer_name": f"net {layer.net} {short[k].get(layer.tensor_index, '?')}"}

    counts: dict[int, list[int]] = {}
    first_difference = None
    identical = 0
    device_nets = []
    for digit, x in enumerate(inputs):
        traces = session.trace(x)
        ran = {1} if int(nets_run[digit]) == 1 else set(range(1, NETS + 1))
        for net in sorted(ran):
            refs[net - 1].invoke(x)
        same = True
        seen_nets = set()
        for t, layer in zip(traces, layers):
            device_ran = t.tensor_index != NOT_RUN
            if device_ran and t.tensor_index != layer.tensor_index:
                raise LenetEdgeError(
                    f"the device's traced layer {t.layer} is tensor {t.tensor_index}, net "
                    f"{layer.net}'s tensor {layer.tensor_index} in the export ({source}): "
                    "the firmware was not built from this export")
            if device_ran:
                seen_nets.add(layer.net)
                counts.setdefault(t.layer, []).append(t.count)
            problem = None
            if device_ran != (layer.net in ran):
                problem = {"element": None, "device": "ran" if device_ran else "not run",
                           "tflm": "ran" if layer.net in ran else "not run",
                           "differing_elements": None}
            elif device_ran:
                problem = tensor_difference(
                    refs[layer.net - 1].tensor(layer.tensor_index).reshape(-1), t.data)
            if problem is not None:
                same = False
                if first_difference is None:
                    first_difference = {"digit": digit, "layer": t.layer, **label(layer),
                                        "tflm_nets_run": int(nets_run[digit]), **problem}
        device_nets.append(len(seen_nets))
        identical += same
        tflm_nets = int(nets_run[digit])
        console.print(f"per-layer input {digit} ({tflm_nets} net{'s' * (tflm_nets > 1)} "
                      "under TFLM): "
                      + ("all tensors identical to TFLM's nets" if same else "DIFFERS"))
    out_layers = []
    for k, layer in enumerate(layers):
        values = counts.get(k, [])
        out_layers.append({"layer": k, **label(layer), "size": layer.size,
                           "digits_run": len(values),
                           "count_median": int(np.median(values)) if values else None})
    return {"digits": len(inputs), "identical_digits": identical,
            "first_difference": first_difference, "layers": out_layers,
            "ensemble": {"layers_from": source,
                         "tflm_nets_run": [int(n) for n in nets_run],
                         "device_nets_traced": device_nets}}
