"""`seqapp export`: a checkpoint -> one self-contained ONNX file that onnxruntime runs without PyTorch.

The shared part: PyTorch's exporter (torch.onnx.export(dynamo=True)), constant folding (onnxscript's
optimizer), onnxruntime's dynamic int8 quantization, float16 or int8 storage of the weights, weights two
graphs share stored once, the settings a runtime needs as JSON in the model's metadata, and a check of every
export against PyTorch. Each task says what its graph is (register_exporter)."""
from __future__ import annotations

import importlib
import json
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np

from .errors import UserError

OPSET = 18                  # the STFT of the speech front end needs >= 17
WEIGHT_STORAGE = ("float32", "float16", "int8")  # how a file may store its weights (store_weights)
METADATA_KEY = "seqapp"     # the model's metadata_props entry holding its settings (JSON)
EXPORTERS: dict[str, str] = {}


def register_exporter(task: str, target: str) -> None:
    """target "package.module:function", called as function(ckpt, path, int8, final, weights) -> lines to print
    ("{out}" in them stands for the file's final name, `final`; `path` is where to write it, renamed after).
    Named, not imported: the command line starts without torch or onnx."""
    EXPORTERS[task] = target


def add_export_command(commands) -> None:
    p = commands.add_parser("export", help="write a checkpoint as an ONNX model for onnxruntime (no PyTorch needed)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True, help="the .onnx file to write")
    p.add_argument("--int8", action="store_true", help="int8 weights (onnxruntime dynamic quantization)")
    p.add_argument("--weights", choices=WEIGHT_STORAGE, default="float32",
                   help="how the file stores the weights, all computed in float32: float16 halves the file; int8 "
                        "quarters the recurrent and output weights (a scale per row), the front end in float16")
    p.set_defaults(handler=export_command)


def export_command(args) -> None:
    from . import checkpoint

    ckpt = checkpoint.load(args.checkpoint)  # onto the CPU, wherever it was trained
    if ckpt["task"] not in EXPORTERS:
        raise UserError(f"{args.checkpoint} is a {ckpt['task']!r} checkpoint: only {' and '.join(sorted(EXPORTERS))} "
                        "models export")
    out = Path(args.out)
    if out.is_dir():
        raise UserError(f"--out {out} is a folder: give the file to write, e.g. {out / 'model.onnx'}")
    out.parent.mkdir(parents=True, exist_ok=True)
    module, function = EXPORTERS[ckpt["task"]].split(":")
    with checkpoint.replaced_when_done(out) as tmp:
        lines = getattr(importlib.import_module(module), function)(ckpt, tmp, args.int8, out, args.weights)
    kinds = ", ".join(k for k, on in (("int8", args.int8), (f"{args.weights} weights", args.weights != "float32"))
                      if on)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB{', ' + kinds if kinds else ''})")
    for line in lines:
        print(line.replace("{out}", str(out)))


def unrolled_for_int8(cell: str, int8: bool) -> bool:
    """onnxruntime has no int8 GRU op: an int8 export runs a GRU as its single steps' matrix products instead."""
    return int8 and cell == "gru"


def write_onnx(module, example, out: Path, inputs: list[str], outputs: list[str], metadata: dict,
               int8: bool, dynamic: dict | None = None, float_weights: tuple = (), weights: str = "float32") -> float:
    """Export `module`, fold its constants, optionally quantize, write one file with `metadata` under
    METADATA_KEY, and check it: `example(batch)` makes inputs; the export traces a batch of 2, the check runs
    a batch of 3 against PyTorch (checked_difference, whose result is returned). `dynamic`: {input name:
    {axis: name}} for dimensions left free (batch only: a recurrent layer's time dimension would be fixed to
    the example's length anyway, so graphs here are fixed-length steps and chunks). `float_weights`: shapes
    of weight matrices whose products stay float, and whose storage is float16 at most. `weights`: how the
    file stores the float weights (store_weights)."""
    import onnx
    import onnxscript.optimizer
    import torch

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" and the like
    shapes = None
    if dynamic:
        dims = {}
        shapes = tuple({axis: dims.setdefault(d, torch.export.Dim(d)) for axis, d in dynamic[name].items()}
                       if name in dynamic else None for name in inputs)  # in the order of forward's arguments
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module.eval(), example(2), dynamo=True, input_names=inputs,
                                    output_names=outputs, dynamic_shapes=shapes, opset_version=OPSET, verbose=False)
    model = onnxscript.optimizer.optimize(program.model_proto, input_size_limit=1 << 30, output_size_limit=1 << 30)
    for value in model.graph.output:  # the exporter's declared shapes of LSTM states can be wrong: let ORT infer
        value.type.tensor_type.ClearField("shape")
    if int8:
        model = quantize(model, float_weights)
    model = store_weights(model, weights, float_weights)
    strip_trace_info(model)
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps({**metadata, "int8": int8, "weights": weights})
    onnx.save_model(model, str(out))
    check = example(3)
    with torch.no_grad():
        expected = module(*check)
    expected = expected if isinstance(expected, tuple) else (expected,)
    return checked_difference(out, dict(zip(inputs, (t.numpy() for t in check))), [t.numpy() for t in expected],
                              int8, weights)


def strip_trace_info(model) -> None:
    """Drop what the exporter records for debugging: each node's source location and module path, and the
    intermediate shapes (onnxruntime infers them). A tenth of a small model's file; the graph is unchanged."""
    for node in model.graph.node:
        node.doc_string = ""
        del node.metadata_props[:]
    del model.graph.value_info[:]


def store_weights(model, weights: str, float_weights: tuple = ()):
    """The model with its float weights stored as `weights` (WEIGHT_STORAGE): float32 as they are; float16
    (half_weights); int8 (byte_weights), but those of a shape in `float_weights` in float16: the speech
    embedding's convolutions moved posteriors by up to 0.19 in int8, its heads' by 0.018."""
    if weights == "float16":
        return half_weights(model)
    if weights == "int8":
        front_end = {w.name for w in model.graph.initializer if tuple(w.dims) in float_weights}
        return byte_weights(half_weights(model, only=front_end))
    return model


def half_weights(model, min_values: int = 1024, only: set | None = None):
    """Each float32 initializer of at least `min_values` values (of those named in `only`, when given) stored
    as float16 and cast back to float32 by a Cast node, which onnxruntime folds when it loads the model: half
    the file, the same float32 arithmetic, on weights rounded to 11 significant bits."""
    import onnx
    from onnx import helper, numpy_helper

    casts = []
    for weight in model.graph.initializer:
        if weight.data_type != onnx.TensorProto.FLOAT or np.prod(weight.dims) < min_values:
            continue
        if only is not None and weight.name not in only:
            continue
        name = weight.name
        weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight).astype(np.float16), f"{name}.fp16"))
        casts.append(helper.make_node("Cast", [f"{name}.fp16"], [name], to=onnx.TensorProto.FLOAT))
    return prepended(model, casts)


def prepended(model, nodes: list):
    """The model with `nodes` (those that turn stored weights back into float32) before its own."""
    nodes = nodes + list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


def byte_weights(model, min_values: int = 1024, block: int = 64):
    """Each float32 initializer of at least `min_values` values stored as int8 with a float32 scale for each
    slice along its leading axes (absolute maximum / 127; as many leading axes as leave slices of at least
    `block` values: a convolution's output channel, a recurrent gate's row), turned back into float32 by a Cast
    and a Mul that onnxruntime folds when it loads the model: a quarter of the file, the same float32
    arithmetic, on weights rounded to 1/254 of their slice's range."""
    import onnx
    from onnx import helper, numpy_helper

    nodes = []
    for weight in model.graph.initializer:
        if weight.data_type != onnx.TensorProto.FLOAT or np.prod(weight.dims) < min_values:
            continue
        values, name = numpy_helper.to_array(weight), weight.name
        lead = 0
        while lead < values.ndim - 1 and np.prod(values.shape[lead + 1:]) >= block:
            lead += 1
        axes = tuple(range(lead, values.ndim))
        scale = np.abs(values).max(axis=axes, keepdims=True).astype(np.float32) / 127
        scale[scale == 0] = 1.0
        weight.CopyFrom(numpy_helper.from_array(np.round(values / scale).astype(np.int8), f"{name}.int8"))
        model.graph.initializer.append(numpy_helper.from_array(scale, f"{name}.scale"))
        nodes += [helper.make_node("Cast", [f"{name}.int8"], [f"{name}.wide"], to=onnx.TensorProto.FLOAT),
                  helper.make_node("Mul", [f"{name}.wide", f"{name}.scale"], [name])]
    return prepended(model, nodes)


def share_weights(paths: list[Path], location: str, min_bytes: int = 1024) -> bytes:
    """The weights (of `min_bytes` or more) that every graph at `paths` holds with the same values, stored once:
    each graph is rewritten to read them as ONNX external data from the file named `location` beside it (where
    onnxruntime looks), and their bytes are returned for the caller to write there."""
    import onnx
    from onnx.external_data_helper import set_external_data

    def key(tensor):
        return tensor.data_type, tuple(tensor.dims), tensor.raw_data

    models = [onnx.load(str(p)) for p in paths]
    common = set.intersection(*({key(t) for t in m.graph.initializer if len(t.raw_data) >= min_bytes}
                                for m in models))
    blob, offsets = bytearray(), {}
    for model, path in zip(models, paths):
        for tensor in model.graph.initializer:
            k = key(tensor)
            if k not in common:
                continue
            if k not in offsets:
                offsets[k] = len(blob)
                blob += tensor.raw_data
            set_external_data(tensor, location, offset=offsets[k], length=len(tensor.raw_data))
            tensor.data_location = onnx.TensorProto.EXTERNAL
            tensor.ClearField("raw_data")
        onnx.save_model(model, str(path))
    return bytes(blob)


def quantize(model, float_weights: tuple = ()):
    """onnxruntime's dynamic quantization: int8 weights for matrix products, Gather and LSTM; activations
    quantized on the fly, per tensor. (It has no int8 GRU op: tasks export a GRU as its steps' products for
    int8.) Needs the folded graph, whose weights are initializers: before folding, only layers whose weights
    reach them directly are quantized.
    Products and convolutions with a weight of a shape in `float_weights` stay float (a mel filterbank: a power
    spectrum spans too many decades for one int8 scale)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    shapes = {i.name: tuple(i.dims) for i in model.graph.initializer}
    keep = [n.name for n in model.graph.node if n.op_type in ("MatMul", "Conv") and any(shapes.get(i) in float_weights
                                                                              for i in n.input)]

    root, level = logging.getLogger(), logging.getLogger().level
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root.setLevel(logging.ERROR)  # its "consider pre-processing" warning: folding was that step
        source, target = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        onnx.save_model(model, str(source))
        try:
            quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, nodes_to_exclude=keep)
        finally:
            root.setLevel(level)
        return onnx.load(str(target))


def session(path, threads: int = 1):
    """An onnxruntime session on the CPU (one thread by default: a step is too small to share)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def metadata(sess) -> dict:
    return json.loads(sess.get_modelmeta().custom_metadata_map[METADATA_KEY])


TOLERANCE = {"float32": 1e-3,  # float32 rounding gives ~1e-6; an exporter bug (GRU before onnxscript 0.7.2) far more
             "float16": 2e-2,  # float16 weights: ~5e-4 relative each, through a dozen layers
             "int8": 5e-2}     # int8 weights: ~4e-3 of a row's largest each


def checked_difference(path, feeds: dict, expected: list, int8: bool, weights: str = "float32") -> float:
    """Run the written model on `feeds`: the largest absolute difference from PyTorch's outputs. A model
    that is not int8 and disagrees is refused, not written."""
    got = session(path).run(None, {k: np.asarray(v) for k, v in feeds.items()})
    if [g.shape for g in got] != [np.shape(e) for e in expected]:
        raise ValueError(f"outputs {[g.shape for g in got]} against PyTorch's {[np.shape(e) for e in expected]}")
    diff = max(float(np.abs(np.asarray(g, dtype=np.float64) - np.asarray(e, dtype=np.float64)).max())
               for g, e in zip(got, expected))
    scale = max(1.0, *(float(np.abs(e).max()) for e in expected))  # a ReLU RNN's values can run to hundreds
    tolerance = TOLERANCE[weights]
    if not int8 and not diff <= tolerance * scale:
        raise UserError(f"the exported model disagrees with PyTorch by {diff:.2g} (more than {tolerance}): "
                        "not written; check that onnxscript >= 0.7.2 is installed")
    return diff

