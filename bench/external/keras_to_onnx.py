"""Converts a dumped Keras layers model (dump_tfjs.js output) to ONNX in tf2onnx's style:
NHWC input transposed to NCHW, ZeroPadding2D as Pad, BatchNormalization folded into the
convolution before it, ReLU(max_value=6) as Clip, Dense as MatMul + Add, the final Softmax kept.

Usage: python3 keras_to_onnx.py DUMP_DIR OUT.onnx
"""
import json
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main(dump, out):
    meta = json.load(open(f"{dump}/topology.json"))
    flat = np.fromfile(f"{dump}/weights.bin", dtype="<f4")
    weights = {}
    for w in meta["weights"]:
        n = int(np.prod(w["shape"]))
        weights[w["name"]] = flat[w["offset"]:w["offset"] + n].reshape(w["shape"])
    layers = meta["topology"]["model_config"]["config"]["layers"]
    nodes, inits = [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(op, inputs, name, **attrs):
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    consumers = {}
    for layer in layers:
        for group in layer["inbound_nodes"]:
            for src in group:
                consumers.setdefault(src[0], []).append(layer)
    out_of = {}
    first = layers[0]
    size = first["config"]["batch_input_shape"][1:]
    graph_input = helper.make_tensor_value_info(first["name"], TensorProto.FLOAT, ["batch", *size])
    out_of[first["name"]] = node("Transpose", [first["name"]], "input_nchw", perm=[0, 3, 1, 2])
    folded = set()
    for layer in layers[1:]:
        kind, cfg, name = layer["class_name"], layer["config"], layer["name"]
        inputs = [out_of[src[0]] for src in layer["inbound_nodes"][0]]
        x = inputs[0]
        if name in folded:
            out_of[name] = x
            continue
        if kind == "ZeroPadding2D":
            (t, b), (l, r) = cfg["padding"]
            out_of[name] = node("Pad", [x, const(f"{name}/pads", np.array([0, 0, t, l, 0, 0, b, r], np.int64))], name)
        elif kind in ("Conv2D", "DepthwiseConv2D"):
            depthwise = kind == "DepthwiseConv2D"
            k = weights[f"{name}/depthwise_kernel" if depthwise else f"{name}/kernel"]
            w = k.transpose(2, 3, 0, 1) if depthwise else k.transpose(3, 2, 0, 1)
            bias = weights.get(f"{name}/bias", np.zeros(w.shape[0], np.float32))
            nxt = consumers.get(name, [])
            if len(nxt) == 1 and nxt[0]["class_name"] == "BatchNormalization":
                bn = nxt[0]["name"]
                g, be = weights[f"{bn}/gamma"], weights[f"{bn}/beta"]
                mu, var = weights[f"{bn}/moving_mean"], weights[f"{bn}/moving_variance"]
                s = g / np.sqrt(var + nxt[0]["config"]["epsilon"])
                w = w * s[:, None, None, None]
                bias = (bias - mu) * s + be
                folded.add(bn)
            kh, kw = cfg["kernel_size"]
            pads = [(kh - 1) // 2, (kw - 1) // 2, kh // 2, kw // 2] if cfg["padding"] == "same" else [0, 0, 0, 0]
            attrs = dict(kernel_shape=[kh, kw], strides=cfg["strides"], pads=pads, dilations=cfg.get("dilation_rate", [1, 1]))
            if depthwise:
                attrs["group"] = w.shape[0]
            out_of[name] = node("Conv", [x, const(f"{name}/W", w.astype(np.float32)), const(f"{name}/B", bias.astype(np.float32))], name, **attrs)
        elif kind == "BatchNormalization":
            eps = cfg["epsilon"]
            out_of[name] = node("BatchNormalization", [x] + [const(f"{name}/{p}", weights[f"{name}/{q}"]) for p, q in
                                (("scale", "gamma"), ("B", "beta"), ("mean", "moving_mean"), ("var", "moving_variance"))], name, epsilon=eps)
        elif kind == "ReLU":
            if cfg.get("max_value") is not None:
                out_of[name] = node("Clip", [x, const(f"{name}/min", np.array(0, np.float32)), const(f"{name}/max", np.array(cfg["max_value"], np.float32))], name)
            else:
                out_of[name] = node("Relu", [x], name)
        elif kind == "Add":
            out_of[name] = node("Add", inputs, name)
        elif kind == "AveragePooling2D":
            out_of[name] = node("AveragePool", [x], name, kernel_shape=cfg["pool_size"], strides=cfg["strides"])
        elif kind == "Flatten":
            out_of[name] = node("Flatten", [x], name, axis=1)
        elif kind == "Dropout":
            out_of[name] = x
        elif kind == "Dense":
            y = node("MatMul", [x, const(f"{name}/kernel", weights[f"{name}/kernel"])], f"{name}/MatMul")
            y = node("Add", [y, const(f"{name}/bias", weights[f"{name}/bias"])], f"{name}/BiasAdd")
            act = cfg["activation"]
            if act == "relu":
                y = node("Relu", [y], f"{name}/Relu")
            elif act == "softmax":
                y = node("Softmax", [y], f"{name}/Softmax", axis=-1)
            elif act != "linear":
                raise SystemExit(f"{name}: activation {act} not handled")
            out_of[name] = y
        else:
            raise SystemExit(f"{name}: layer {kind} not handled")
    last = layers[-1]["name"]
    nodes.append(helper.make_node("Identity", [out_of[last]], [last], name="output"))
    classes = weights[f"{last}/kernel"].shape[1]
    graph = helper.make_graph(nodes, "keras_model", [graph_input], [helper.make_tensor_value_info(last, TensorProto.FLOAT, ["batch", classes])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="keras_to_onnx.py (tf2onnx style)")
    onnx.checker.check_model(model)
    onnx.save(model, out)
    print(f"{len(nodes)} nodes, {sum(i.dims and int(np.prod(i.dims)) or 1 for i in inits)} values -> {out}")


if __name__ == "__main__":
    main(*sys.argv[1:])
