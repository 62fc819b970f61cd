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

from explorer.models.graph_net import GraphError, GraphNet, check_operators

PROBE = 2  # digits run through the graph to check its shapes


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


def check_input(graph: Any, constants: set[str]) -> str:
    inputs = [value for value in graph.input if value.name not in constants]
    if len(inputs) != 1:
        raise GraphError(f"it takes {len(inputs)} inputs; it must take one batch of (N, 1, 28, 28) images")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or dims[1:] not in ([1, 28, 28], [None, None, None]):
        shown = ", ".join("N" if d is None else str(d) for d in dims)
        raise GraphError(f"its input has shape ({shown}); it must take (N, 1, 28, 28) images in [0, 1]")
    return inputs[0].name


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


def read(path: Path, embedding: str | None = None) -> tuple[dict[str, Any], list[torch.Tensor]]:
    """The graph spec and constant tensors of the ONNX classifier at `path`, checked to map (N, 1, 28, 28) images
    to (N, 10) logits through the named (or guessed) embedding. GraphError says in one line what is wrong."""
    onnx = onnx_package()
    try:
        proto = onnx.load(str(path), load_external_data=False)
        onnx.checker.check_model(proto)
    except Exception as exc:  # the parser and checker raise several unrelated types for a damaged file
        raise GraphError(f"not a valid ONNX model ({str(exc).strip().splitlines()[0][:200]})") from exc
    graph = proto.graph
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in graph.initializer):
        raise GraphError("its weights live in a separate file; save them inside the .onnx file")
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
        attrs = {k: v for k, v in attrs.items() if isinstance(v, (int, float, str, list))}
        nodes.append({"op": node.op_type, "inputs": list(node.input), "outputs": list(node.output), "attrs": attrs})
    if len(graph.output) != 1:
        raise GraphError(f"it has {len(graph.output)} outputs; it must have one, the (N, 10) logits")
    output = graph.output[0].name
    check_operators(nodes)
    spec = {"input": check_input(graph, set(names)), "output": output, "nodes": nodes, "tensors": names,
            "embedding": embedding or default_embedding(nodes, output)}
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
    except Exception as exc:  # a graph the interpreter cannot run fails in many ways; one line says where
        raise GraphError(f"running it on 2 blank images failed ({type(exc).__name__}: {str(exc)[:160]})") from exc
    if tuple(logits.shape) != (PROBE, 10) or not logits.is_floating_point():
        raise GraphError(f"it gives {tuple(logits.shape)} for 2 images; it must give (N, 10) float logits")
    if embeddings.dim() != 2 or embeddings.shape[0] != PROBE:
        raise GraphError(f"the embedding {spec['embedding']!r} has shape {tuple(embeddings.shape)} for 2 images; "
                         "it must be (N, D): name a flat layer")
    spec["embedding_dim"] = int(embeddings.shape[1])
    return spec, tensors
