"""Where zip1989-modern's int8 model loses accuracy against float (issue 11), on its 16x16
test split and on a validation set: the training digits outside the calibration sample.

    LENET_EDGE_DATA=... .venv/bin/python benchmarks/zip1989_int8_loss.py [--out zip1989_int8_loss.json]

Two tables (markdown on stdout, the figures in the JSON):
1. the bundled .tflite (output calibrated over the whole logit range) against the same
   conversion with `quantize --argmax-range` (quantize/output_range.py): errors, argmax
   flips against float, and ties (the two highest int8 logits equal; argmax takes the first);
2. the bundled model run under TFLM up to one op, its int8 output dequantized and the rest
   of the net in float (numpy, the Keras weights): how many test digits each step flips;
3. the float net (numpy from the float flattened H2) with one rounding of the int8 model
   at a time: H3's weights (symmetric per channel, as the converter), H3's output (the
   bundled scale and zero point), the output layer's weights, the output (the float logits
   rounded at the bundled output's scale and zero point).
Then the standard deviation of the int8 logits (dequantized) minus float, and the first
percentile of the float margin (top minus second logit) on the test digits.
"""
import argparse
import json

import numpy as np

import lenet_edge.train.models  # noqa: F401  (registers the custom layers for loading)
from lenet_edge.bundled import bundled_model
from lenet_edge.quantize.convert import calibration_images, calibration_pick, convert_int8
from lenet_edge.quantize.evaluate import float_logits, model_inputs, tflm_logits
from lenet_edge.quantize.tflm import TflmModel
from lenet_edge.train.zip1989 import load_zip1989

VARIANT = "zip1989-modern"


def counts(float_logit, int8_logit, labels):
    top2 = np.sort(int8_logit, axis=1)[:, -2:]
    tie = top2[:, 0] == top2[:, 1]
    wrong = int8_logit.argmax(1) != labels
    return {"digits": int(len(labels)), "float_errors": int((float_logit.argmax(1) != labels).sum()),
            "int8_errors": int(wrong.sum()),
            "flips_against_float": int((int8_logit.argmax(1) != float_logit.argmax(1)).sum()),
            "ties": int(tie.sum()), "tie_errors": int((tie & wrong).sum())}


def output_quant(model_bytes):
    import tflite

    graph = tflite.Model.GetRootAsModel(model_bytes, 0).Subgraphs(0)
    q = graph.Tensors(graph.Outputs(0)).Quantization()
    return float(q.Scale(0)), int(q.ZeroPoint(0))


def per_op(model_bytes, keras_model, images, labels, float_logit):
    """int8 up to each op (TFLM), float after it, for the ops after which zip1989's net can
    be continued in numpy: H2's ADD (the flattened H2), H3 and the output."""
    tflm = TflmModel(model_bytes, preserve_all_tensors=True)
    outs = [op.outputs[0] for op in tflm.ops]
    inputs = model_inputs(model_bytes, images)
    values = {t: [] for t in outs}
    for x in inputs:
        tflm.invoke(x)
        for t in outs:
            values[t].append(tflm.tensor(t).reshape(-1).astype(np.float32))

    import tflite

    graph = tflite.Model.GetRootAsModel(model_bytes, 0).Subgraphs(0)

    def dequantized(t):
        q = graph.Tensors(t).Quantization()
        return (np.array(values[t]) - q.ZeroPoint(0)) * q.Scale(0)

    w3, b3 = keras_model.get_layer("h3").get_weights()
    wl, bl = keras_model.get_layer("logits").get_weights()
    steps = {"H1, H2 (int8 up to the flattened H2)":
             np.maximum(dequantized(outs[4]) @ w3 + b3, 0) @ wl + bl,
             "H1, H2, H3 (int8 up to H3)": dequantized(outs[5]) @ wl + bl,
             "all (the int8 logits)": dequantized(outs[6])}
    results = {name: counts(float_logit, logit, labels) for name, logit in steps.items()}
    noise = float((dequantized(outs[6]) - float_logit).std())
    return results, noise, (graph, outs, dequantized)


def one_rounding(keras_model, images, labels, float_logit, h3_params, out_params):
    """Float net from the flattened H2 on, with one int8 rounding at a time (numpy)."""
    import keras

    x = images.astype(np.float32)[..., None] / np.float32(255.0)
    flat = keras.Model(keras_model.inputs, keras_model.get_layer("flatten").output).predict(
        x, batch_size=500, verbose=0)
    w3, b3 = keras_model.get_layer("h3").get_weights()
    wl, bl = keras_model.get_layer("logits").get_weights()

    def weights(w):  # symmetric int8 per output channel
        s = np.abs(w).max(axis=0) / 127
        return np.round(w / s) * s

    def rounded(params):
        scale, zero_point = params
        return lambda v: (np.clip(np.round(v / scale) + zero_point, -128, 127)
                          - zero_point) * scale

    h3_output = rounded(h3_params)

    cases = {"H3's weights": (weights(w3), lambda h: h, wl),
             "H3's output": (w3, h3_output, wl),
             "the output layer's weights": (w3, lambda h: h, weights(wl))}
    found = {name: counts(float_logit, out_q(np.maximum(flat @ w + b3, 0)) @ v + bl, labels)
             for name, (w, out_q, v) in cases.items()}
    found["the output (logits)"] = counts(float_logit, rounded(out_params)(float_logit), labels)
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="zip1989_int8_loss.json")
    args = parser.parse_args()
    import keras

    model = keras.models.load_model(bundled_model(VARIANT, "keras"), compile=False)
    bundled = bundled_model(VARIANT).read_bytes()
    split = load_zip1989()
    train_images, train_labels = split["train"]
    test_images, test_labels = split["test"]
    unseen = np.ones(len(train_images), bool)
    unseen[calibration_pick(len(train_images))] = False
    sets = {"test": (test_images, test_labels),
            "validation": (train_images[unseen], train_labels[unseen])}
    floats = {name: float_logits(model, images) for name, (images, _) in sets.items()}
    argmax = convert_int8(model, calibration_images(train_images), argmax_range=True)
    result = {"variant": VARIANT, "output_range": {}, "per_op_test": None}
    for name, model_bytes in (("calibrated (bundled)", bundled), ("argmax", argmax)):
        scale, zero_point = output_quant(model_bytes)
        result["output_range"][name] = {
            "scale": scale, "zero_point": zero_point,
            **{s: counts(floats[s], tflm_logits(model_bytes, images), labels)
               for s, (images, labels) in sets.items()}}
    result["per_op_test"], noise, (graph, outs, _) = per_op(bundled, model, test_images,
                                                             test_labels, floats["test"])
    q = graph.Tensors(outs[5]).Quantization()
    result["one_rounding_test"] = one_rounding(model, test_images, test_labels, floats["test"],
                                               (q.Scale(0), q.ZeroPoint(0)),
                                               output_quant(bundled))
    top2 = np.sort(floats["test"], axis=1)[:, -2:]
    result["int8_minus_float_logit_std"] = noise
    result["float_margin_p1"] = float(np.percentile(top2[:, 1] - top2[:, 0], 1))

    print(f"| output range | scale | set | digits | float errors | int8 errors | flips | ties | tie errors |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, r in result["output_range"].items():
        for s in sets:
            c = r[s]
            print(f"| {name} | {r['scale']:.4f} | {s} | {c['digits']:,} | {c['float_errors']} | "
                  f"{c['int8_errors']} | {c['flips_against_float']} | {c['ties']} | {c['tie_errors']} |")
    print()
    print("| int8 under TFLM for | float after | test errors | flips against float |")
    print("| --- | --- | ---: | ---: |")
    rest = {0: "H3, output", 1: "output", 2: "nothing"}
    for k, (name, c) in enumerate(result["per_op_test"].items()):
        print(f"| {name} | {rest[k]} | {c['int8_errors']} | {c['flips_against_float']} |")
    print()
    print("| float net with one int8 rounding: | test errors | flips against float | ties |")
    print("| --- | ---: | ---: | ---: |")
    for name, c in result["one_rounding_test"].items():
        print(f"| {name} | {c['int8_errors']} | {c['flips_against_float']} | {c['ties']} |")
    print()
    print(f"int8 minus float logits, standard deviation: {noise:.3f}; first percentile of the "
          f"float margin: {result['float_margin_p1']:.3f}")
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
