"""A model given as a graph of operators (from an ONNX file), run by PyTorch so every attack can take its gradients.

The graph is plain data: a list of nodes (operator, input and output names, attributes) kept in the model card, and
its constant tensors kept in safetensors. Running it interprets that list with the few dozen operators a small image
classifier needs; nothing from the file is ever executed as code. `embed` runs the nodes up to the tensor the user
named as the embedding, `head` the rest, so the latent page and the latent attack see the user's chosen layer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

Tensor = torch.Tensor
Attrs = dict[str, Any]


def _pads(attrs: Attrs, spatial: int) -> list[int]:
    """ONNX pads [begin_1, begin_2, end_1, end_2] as F.pad wants them: last axis first, (begin, end) pairs."""
    pads = attrs.get("pads", [0] * 2 * spatial)
    return [p for axis in reversed(range(spatial)) for p in (pads[axis], pads[axis + spatial])]


def _conv(args: Sequence[Tensor | None], attrs: Attrs) -> Tensor:
    x, weight, bias = args[0], args[1], args[2] if len(args) > 2 else None
    spatial = weight.dim() - 2
    x = F.pad(x, _pads(attrs, spatial))
    conv = (F.conv1d, F.conv2d, F.conv3d)[spatial - 1]
    return conv(x, weight, bias, stride=attrs.get("strides", 1), dilation=attrs.get("dilations", 1),
                groups=attrs.get("group", 1))


def _gemm(args: Sequence[Tensor | None], attrs: Attrs) -> Tensor:
    a, b = args[0], args[1]
    a = a.t() if attrs.get("transA", 0) else a
    b = b.t() if attrs.get("transB", 0) else b
    out = attrs.get("alpha", 1.0) * (a @ b)
    if len(args) > 2 and args[2] is not None:
        out = out + attrs.get("beta", 1.0) * args[2]
    return out


def _pool(args: Sequence[Tensor | None], attrs: Attrs, average: bool) -> Tensor:
    x = args[0]
    kernel = attrs["kernel_shape"]
    spatial = len(kernel)
    stride = attrs.get("strides", [1] * spatial)
    pads = attrs.get("pads", [0] * 2 * spatial)
    symmetric = pads[:spatial] == pads[spatial:]
    if not symmetric:
        x = F.pad(x, _pads(attrs, spatial), value=0.0 if average else -math.inf)
    padding = pads[:spatial] if symmetric else 0
    ceil = bool(attrs.get("ceil_mode", 0))
    if average:
        pool = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[spatial - 1]
        return pool(x, kernel, stride, padding, ceil, bool(attrs.get("count_include_pad", 0)))
    pool = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[spatial - 1]
    return pool(x, kernel, stride, padding, attrs.get("dilations", 1), ceil)


def _reshape(args: Sequence[Tensor | None], attrs: Attrs) -> Tensor:
    x, shape = args[0], [int(s) for s in args[1].tolist()]
    if not attrs.get("allowzero", 0):
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(shape)


def _flatten(args: Sequence[Tensor | None], attrs: Attrs) -> Tensor:
    x, axis = args[0], attrs.get("axis", 1)
    axis = axis % x.dim() if axis < 0 else axis
    return x.reshape(math.prod(x.shape[:axis]), -1)


def _axes(args: Sequence[Tensor | None], attrs: Attrs) -> list[int]:
    """Opset 13 moved `axes` from an attribute to a second input."""
    if len(args) > 1 and args[1] is not None:
        return [int(a) for a in args[1].tolist()]
    return list(attrs.get("axes", []))


def _unsqueeze(args: Sequence[Tensor | None], attrs: Attrs) -> Tensor:
    x = args[0]
    rank = x.dim() + len(axes := _axes(args, attrs))
    for axis in sorted(a % rank for a in axes):
        x = x.unsqueeze(axis)
    return x


def _squeeze(args: Sequence[Tensor | None], attrs: Attrs) -> Tensor:
    x = args[0]
    axes = _axes(args, attrs) or [i for i, size in enumerate(x.shape) if size == 1]
    return x.squeeze(tuple(a % x.dim() for a in axes))


def _gather(args: Sequence[Tensor | None], attrs: Attrs) -> Tensor:
    x, indices = args[0], args[1]
    axis = attrs.get("axis", 0) % x.dim()
    picked = torch.index_select(x, axis, indices.reshape(-1) % x.shape[axis])
    return picked.reshape(x.shape[:axis] + indices.shape + x.shape[axis + 1:])


def _batch_norm(args: Sequence[Tensor | None], attrs: Attrs) -> Tensor:
    x, scale, bias, mean, var = args[:5]
    return F.batch_norm(x, mean, var, scale, bias, training=False, eps=attrs.get("epsilon", 1e-5))


def _softmax(args: Sequence[Tensor | None], attrs: Attrs, log: bool) -> Tensor:
    """Opset 13 made (Log)Softmax act along one axis (default -1); before, it flattened the input from `axis`
    (default 1) into 2-D and normalised each row. The importer writes the older meaning as `coerce_2d`."""
    x, axis = args[0], attrs.get("axis", -1)
    function = torch.log_softmax if log else torch.softmax
    if not attrs.get("coerce_2d"):
        return function(x, axis)
    axis = axis % x.dim()
    return function(x.reshape(math.prod(x.shape[:axis]), -1), 1).reshape(x.shape)


def _clip(args: Sequence[Tensor | None], attrs: Attrs) -> Tensor:
    """Bounds as inputs (opset 11 on) or as attributes (before); either may be absent."""
    def bound(index: int, name: str) -> float | None:
        if len(args) > index and args[index] is not None:
            return float(args[index])
        return attrs.get(name)

    return torch.clamp(args[0], bound(1, "min"), bound(2, "max"))


PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}


def _pad(args: Sequence[Tensor | None], attrs: Attrs) -> Tensor:
    """Pads, value and axes as inputs (opset 11 and 18 on) or as attributes (before)."""
    x = args[0]
    pads = [int(p) for p in args[1].tolist()] if len(args) > 1 and args[1] is not None else list(attrs["pads"])
    value = float(args[2]) if len(args) > 2 and args[2] is not None else attrs.get("value", 0.0)
    axes = ([int(a) % x.dim() for a in args[3].tolist()] if len(args) > 3 and args[3] is not None
            else list(range(x.dim())))
    begin = dict(zip(axes, pads[: len(axes)], strict=True))
    end = dict(zip(axes, pads[len(axes):], strict=True))
    first = min((a for a in axes if begin[a] or end[a]), default=x.dim())
    torch_pads = [p for axis in reversed(range(first, x.dim())) for p in (begin.get(axis, 0), end.get(axis, 0))]
    mode = PAD_MODES[attrs.get("mode", "constant")]
    return F.pad(x, torch_pads, mode=mode, value=value if mode == "constant" else None)


def _cast(args: Sequence[Tensor | None], attrs: Attrs) -> Tensor:
    dtypes = {1: torch.float32, 6: torch.int32, 7: torch.int64, 9: torch.bool, 11: torch.float64}
    return args[0].to(dtypes[attrs["to"]])


OPERATORS: dict[str, Callable[[Sequence[Tensor | None], Attrs], Tensor]] = {
    "Conv": _conv,
    "Gemm": _gemm,
    "MatMul": lambda a, _: a[0] @ a[1],
    "Add": lambda a, _: a[0] + a[1],
    "Sub": lambda a, _: a[0] - a[1],
    "Mul": lambda a, _: a[0] * a[1],
    "Div": lambda a, _: a[0] / a[1],
    "Relu": lambda a, _: F.relu(a[0]),
    "LeakyRelu": lambda a, k: F.leaky_relu(a[0], k.get("alpha", 0.01)),
    "Elu": lambda a, k: F.elu(a[0], k.get("alpha", 1.0)),
    "Sigmoid": lambda a, _: torch.sigmoid(a[0]),
    "Tanh": lambda a, _: torch.tanh(a[0]),
    "Softmax": lambda a, k: _softmax(a, k, log=False),
    "LogSoftmax": lambda a, k: _softmax(a, k, log=True),
    "Clip": _clip,
    "Pad": _pad,
    "MaxPool": lambda a, k: _pool(a, k, average=False),
    "AveragePool": lambda a, k: _pool(a, k, average=True),
    "GlobalAveragePool": lambda a, _: a[0].mean(dim=tuple(range(2, a[0].dim())), keepdim=True),
    "GlobalMaxPool": lambda a, _: a[0].amax(dim=tuple(range(2, a[0].dim())), keepdim=True),
    "BatchNormalization": _batch_norm,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Transpose": lambda a, k: a[0].permute(k["perm"]) if "perm" in k else a[0].permute(*reversed(range(a[0].dim()))),
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Concat": lambda a, k: torch.cat([t for t in a if t is not None], dim=k["axis"]),
    "Shape": lambda a, _: torch.tensor(a[0].shape, dtype=torch.int64),
    "Gather": _gather,
    "Cast": _cast,
    "Dropout": lambda a, _: a[0],
    "Identity": lambda a, _: a[0],
}


class GraphError(ValueError):
    """The graph cannot serve as a model: the message is one line saying why."""


# A graph is data, but not free: 34 Concat(x, x) nodes ask for 2^34 copies of the input. The values one pass makes
# (all of them are kept for the gradient) may not add up to more than this many numbers per image in the batch:
# 8 MB of float32, where the explorer's ConvNet makes about 176,000. Checked before each node that can make more
# than it takes, and after every node.
MAX_VALUES_PER_IMAGE = 1 << 21


def _padded_size(shape: Sequence[int], pads: Sequence[int], axes: Sequence[int]) -> int:
    """The number of values in `shape` padded by ONNX `pads` (all begins, then all ends) along `axes`."""
    grown = list(shape)
    for i, axis in enumerate(axes):
        grown[axis] += pads[i] + pads[i + len(axes)]
    return math.prod(max(size, 0) for size in grown)


def output_size_bound(op: str, args: Sequence[Tensor | None], attrs: Attrs) -> int:
    """At most how many numbers `op` will make from `args`, without running it, for the operators whose output can
    outgrow their inputs (broadcasting, products, concatenation, padding, gathering); 0 for the others, which make no
    more than they take."""
    shapes = [tuple(a.shape) for a in args if a is not None]
    if op in ("Add", "Sub", "Mul", "Div"):
        return math.prod(torch.broadcast_shapes(*shapes))
    if op == "Concat":
        return sum(math.prod(shape) for shape in shapes)
    if op == "MatMul":
        a = shapes[0] if len(shapes[0]) > 1 else (1, *shapes[0])
        b = shapes[1] if len(shapes[1]) > 1 else (*shapes[1], 1)
        return math.prod(torch.broadcast_shapes(a[:-2], b[:-2])) * a[-2] * b[-1]
    if op == "Gemm":
        rows = shapes[0][1] if attrs.get("transA") else shapes[0][0]
        return rows * (shapes[1][0] if attrs.get("transB") else shapes[1][1])
    if op in ("Conv", "MaxPool", "AveragePool"):
        spatial = len(shapes[0]) - 2
        padded = _padded_size(shapes[0], attrs.get("pads", [0] * 2 * spatial), range(2, 2 + spatial))
        return padded * shapes[1][0] // max(shapes[0][1], 1) if op == "Conv" else padded
    if op == "Pad":
        pads = [int(p) for p in args[1].tolist()] if len(args) > 1 and args[1] is not None else attrs["pads"]
        axes = args[3].tolist() if len(args) > 3 and args[3] is not None else range(len(shapes[0]))
        return _padded_size(shapes[0], pads, [int(a) % len(shapes[0]) for a in axes])
    if op == "Gather":
        axis = attrs.get("axis", 0) % len(shapes[0])
        return math.prod(shapes[1]) * math.prod(shapes[0]) // max(shapes[0][axis], 1)
    return 0


def check_operators(nodes: list[dict]) -> None:
    if unsupported := sorted({n["op"] for n in nodes} - OPERATORS.keys()):
        raise GraphError(f"it uses operators the explorer cannot run: {', '.join(unsupported)} "
                         f"(it runs {', '.join(sorted(OPERATORS))})")


def needed(nodes: list[dict], targets: set[str], stop: set[str]) -> list[dict]:
    """The nodes that compute `targets`, in graph order, going back no further than the values in `stop`."""
    producer = {out: i for i, node in enumerate(nodes) for out in node["outputs"]}
    chosen: set[int] = set()
    wanted = [t for t in targets if t not in stop]
    while wanted:
        value = wanted.pop()
        if (index := producer.get(value)) is None or index in chosen:
            continue
        chosen.add(index)
        wanted.extend(i for i in nodes[index]["inputs"] if i and i not in stop)
    return [nodes[i] for i in sorted(chosen)]


def _too_big(node: dict, images: int) -> str:
    return (f"its {node['op']} node making {node['outputs'][0]!r} takes the graph past {MAX_VALUES_PER_IMAGE:,} "
            f"numbers per image ({images} images): refused, so that it cannot exhaust the memory it runs in")


class GraphNet(nn.Module):
    """`spec` holds input, output and embedding names, the nodes, and the constant tensors' names (their values
    come with the weights, as buffers named t0, t1, ... in that order)."""

    def __init__(self, spec: dict[str, Any], tensors: Sequence[Tensor] | None = None) -> None:
        super().__init__()
        self.spec = spec
        for i in range(len(spec["tensors"])):
            self.register_buffer(f"t{i}", tensors[i] if tensors is not None else torch.empty(0))
        check_operators(spec["nodes"])
        embedding, output = spec["embedding"], spec["output"]
        self.embed_nodes = needed(spec["nodes"], {embedding}, {spec["input"]})
        self.head_nodes = needed(spec["nodes"], {output}, {embedding})
        known = {embedding} | set(spec["tensors"]) | {o for n in self.head_nodes for o in n["outputs"]}
        if missing := sorted({i for n in self.head_nodes for i in n["inputs"] if i and i not in known}):
            raise GraphError(f"the logits use {missing[0]!r} besides the embedding {embedding!r}, so the embedding "
                             "does not decide the verdict: name a layer nearer the logits")
        self.embedding_dim = int(spec.get("embedding_dim", 0))
        self.card: dict[str, Any] = {}

    def constants(self) -> dict[str, Tensor]:
        return {name: getattr(self, f"t{i}") for i, name in enumerate(self.spec["tensors"])}

    @staticmethod
    def run(nodes: list[dict], values: dict[str, Tensor], target: str, images: int) -> Tensor:
        """The nodes in order, together allowed to make MAX_VALUES_PER_IMAGE numbers per image."""
        left = MAX_VALUES_PER_IMAGE * max(images, 1)
        for node in nodes:
            args = [values[name] if name else None for name in node["inputs"]]
            attrs = node.get("attrs", {})
            if output_size_bound(node["op"], args, attrs) > left:
                raise GraphError(_too_big(node, images))
            out = values[node["outputs"][0]] = OPERATORS[node["op"]](args, attrs)
            left -= out.numel()
            if left < 0:
                raise GraphError(_too_big(node, images))
        return values[target]

    def _part(self, nodes: list[dict], name: str, target: str, batch: Tensor) -> Tensor:
        if self.spec.get("batch") == 1:  # exported for one image at a time (torch.onnx.export's default): map it
            def one(item: Tensor) -> Tensor:
                return self.run(nodes, {**self.constants(), name: item[None]}, target, 1)[0]
            return torch.func.vmap(one)(batch)
        return self.run(nodes, {**self.constants(), name: batch}, target, len(batch))

    def embed(self, x: Tensor) -> Tensor:
        return self._part(self.embed_nodes, self.spec["input"], self.spec["embedding"], x)

    def head(self, z: Tensor) -> Tensor:
        return self._part(self.head_nodes, self.spec["embedding"], self.spec["output"], z)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.embed(x))
