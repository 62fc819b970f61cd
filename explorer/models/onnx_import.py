"""Read an ONNX classifier into a GraphNet: its nodes become plain data, its constants tensors. Needs the optional
`onnx` package (pip install 'explorer[onnx]') only here, when a model is added; loading it later does not.

Why not onnx2torch: it imports torchvision, whose PyPI wheels for Linux are CUDA builds that fail to import beside
the CPU torch wheel this project runs on ("operator torchvision::nms does not exist"). The operators a small image
classifier uses are few, and graph_net.py runs them with PyTorch's own functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from explorer.models.graph_net import PAD_MODES, GraphError, GraphNet, check_operators

PROBE = 2  # digits run through the graph to check its shapes
OLDEST_OPSET = 7  # the operators' meanings graph_net.py implements, from this opset on


def onnx_package() -> Any:
    try:
        import onnx
    except ImportError as exc:
        raise GraphError("reading ONNX needs the optional onnx package: pip install 'explorer[onnx]'") from exc
    return onnx


def attribute_values(onnx: Any, node: Any) -> dict[str, Any]:
    values = {}
    for attribute in node.attribute:
        value = onnx.helper.get_attribute_value(attribute)
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, list) and value and isinstance(value[0], bytes):
            value = [v.decode() for v in value]
        values[attribute.name] = value
    return values


def constant_tensor(onnx: Any, attrs: dict[str, Any]) -> np.ndarray:
    """A Constant node's value, whichever of its attributes holds it."""
    if "value" in attrs:
        return onnx.numpy_helper.to_array(attrs["value"])
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64),
                       ("value_ints", np.int64)):
        if key in attrs:
            return np.asarray(attrs[key], dtype=dtype)
    raise GraphError(f"a Constant node holds {sorted(attrs)}, which the explorer cannot read")


def as_tensor(array: np.ndarray) -> torch.Tensor:
    # float64 constants would make every convolution fail against float32 digits
    array = array.astype(np.float32) if array.dtype == np.float64 else array
    return torch.from_numpy(np.array(array, order="C"))  # not ascontiguousarray: it makes scalars 1-d


def check_input(graph: Any, constants: set[str]) -> tuple[str, int | None]:
    """The input's name and its fixed batch size (None when any batch goes)."""
    inputs = [value for value in graph.input if value.name not in constants]
    if len(inputs) != 1:
        raise GraphError(f"it takes {len(inputs)} inputs; it must take one batch of (N, 1, 28, 28) images")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
    shown = ", ".join("N" if d is None else str(d) for d in dims)
    if len(dims) != 4 or dims[1:] not in ([1, 28, 28], [None, None, None]):
        raise GraphError(f"its input has shape ({shown}); it must take (N, 1, 28, 28) images in [0, 1]")
    if dims[0] not in (None, 1):
        raise GraphError(f"its input has shape ({shown}): export it with a batch of 1 (torch.onnx.export's default) "
                         "or a dynamic one")
    return inputs[0].name, dims[0]


def default_embedding(nodes: list[dict], output: str) -> str:
    """The input of the dense layer that makes the logits: what 'penultimate layer' means for most classifiers."""
    producer = {o: n for n in nodes for o in n["outputs"]}
    node = producer.get(output)
    if node and node["op"] == "Add":  # MatMul + Add, as some exporters write a dense layer
        node = next((producer[i] for i in node["inputs"] if producer.get(i, {}).get("op") == "MatMul"), None)
    if node and node["op"] in ("Gemm", "MatMul"):
        return node["inputs"][0]
    raise GraphError("the logits do not come from a dense layer, so the embedding cannot be guessed: name it with "
                     "--embedding")


def one_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def load_proto(onnx: Any, path: Path) -> Any:
    """The model at `path` with its weights, from the file itself or from the data files beside it (as
    torch.onnx.export writes NAME.onnx.data); a data file anywhere else is refused unread."""
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # the parser raises several unrelated types for a damaged file
        raise GraphError(f"not a valid ONNX model ({one_line(exc)})") from exc
    folder = path.resolve().parent
    tensors = [*proto.graph.initializer, *(attribute.t for node in proto.graph.node for attribute in node.attribute
                                             if attribute.type == onnx.AttributeProto.TENSOR)]
    external = [t for t in tensors if onnx.external_data_helper.uses_external_data(t)]
    for tensor in external:
        location = {entry.key: entry.value for entry in tensor.external_data}.get("location", "")
        target = (folder / location).resolve()
        if not location or Path(location).is_absolute() or target.parent != folder:
            raise GraphError(f"its weights point to {location!r}, outside the model's folder: keep the data file "
                             "beside the .onnx file, under a plain file name")
        if not target.is_file():
            raise GraphError(f"its weights live in {location!r} beside it, which is missing: add both files (or "
                             "save one file: onnx.save_model(onnx.load(path), out, save_as_external_data=False))")
    try:
        if external:
            onnx.external_data_helper.load_external_data_for_model(proto, str(folder))
        onnx.checker.check_model(proto)
    except Exception as exc:
        raise GraphError(f"not a valid ONNX model ({one_line(exc)})") from exc
    return proto


def opset_of(onnx: Any, proto: Any) -> int:
    """The standard operator set the graph is written in; graphs using any other domain are refused."""
    versions = {entry.domain or "ai.onnx": entry.version for entry in proto.opset_import}
    if others := sorted({node.domain for node in proto.graph.node} - {"", "ai.onnx"}):
        raise GraphError(f"it uses operators from {', '.join(others)}, which the explorer cannot run: export with "
                         "standard ONNX operators only")
    newest = onnx.defs.onnx_opset_version()
    opset = versions.get("ai.onnx", 0)
    if not OLDEST_OPSET <= opset <= newest:
        raise GraphError(f"it is written in ONNX opset {opset}; the explorer reads opsets {OLDEST_OPSET} to {newest}")
    return opset


def with_opset_meaning(op: str, attrs: dict[str, Any], opset: int) -> dict[str, Any]:
    """Attributes that say what the node means in its opset, where the meaning changed between opsets."""
    if op in ("Softmax", "LogSoftmax") and opset < 13:
        return {"axis": attrs.get("axis", 1), "coerce_2d": 1}
    if op == "Pad" and attrs.get("mode", "constant") not in PAD_MODES:
        raise GraphError(f"its Pad node uses mode {attrs['mode']!r}; the explorer pads with {', '.join(PAD_MODES)}")
    return attrs


def read(path: Path, embedding: str | None = None) -> tuple[dict[str, Any], list[torch.Tensor]]:
    """The graph spec and constant tensors of the ONNX classifier at `path` (its weights in the file or in data
    files beside it), checked to map (N, 1, 28, 28) images to (N, 10) logits through the named (or guessed)
    embedding, with no layer too large to run. GraphError says in one line what is wrong."""
    onnx = onnx_package()
    proto = load_proto(onnx, path)
    opset = opset_of(onnx, proto)
    graph = proto.graph
    names = [t.name for t in graph.initializer]
    tensors = [as_tensor(onnx.numpy_helper.to_array(t)) for t in graph.initializer]
    nodes = []
    for node in graph.node:
        attrs = attribute_values(onnx, node)
        if node.op_type == "Constant":
            names.append(node.output[0])
            tensors.append(as_tensor(constant_tensor(onnx, attrs)))
            continue
        if attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
            raise GraphError(f"its {node.op_type} node uses auto_pad={attrs['auto_pad']}; export it with explicit pads")
        attrs.pop("auto_pad", None)
        attrs = with_opset_meaning(node.op_type, {k: v for k, v in attrs.items()
                                                  if isinstance(v, (int, float, str, list))}, opset)
        nodes.append({"op": node.op_type, "inputs": list(node.input), "outputs": list(node.output), "attrs": attrs})
    if len(graph.output) != 1:
        raise GraphError(f"it has {len(graph.output)} outputs; it must have one, the (N, 10) logits")
    output = graph.output[0].name
    check_operators(nodes)
    input_name, batch = check_input(graph, set(names))
    spec = {"input": input_name, "output": output, "nodes": nodes, "tensors": names,
            "embedding": embedding or default_embedding(nodes, output), "opset": opset, "batch": batch}
    produced = {o for n in nodes for o in n["outputs"]}
    if spec["embedding"] not in produced:
        raise GraphError(f"it has no layer output named {spec['embedding']!r}; name one of: "
                         f"{', '.join(sorted(produced)[:12])}")
    model = GraphNet(spec, tensors).eval()
    probe = torch.zeros(PROBE, 1, 28, 28)
    try:
        with torch.no_grad():
            embeddings = model.embed(probe)
            logits = model.head(embeddings)
    except GraphError:
        raise
    except Exception as exc:  # a graph the interpreter cannot run fails in many ways; one line says where
        raise GraphError(f"running it on 2 blank images failed ({type(exc).__name__}: {str(exc)[:160]})") from exc
    if tuple(logits.shape) != (PROBE, 10) or not logits.is_floating_point():
        raise GraphError(f"it gives {tuple(logits.shape)} for 2 images; it must give (N, 10) float logits")
    if embeddings.dim() != 2 or embeddings.shape[0] != PROBE:
        raise GraphError(f"the embedding {spec['embedding']!r} has shape {tuple(embeddings.shape)} for 2 images; "
                         "it must be (N, D): name a flat layer")
    spec["embedding_dim"] = int(embeddings.shape[1])
    return spec, tensors
