"""A classifier made outside the project and exported to ONNX, as a user would bring one."""

from pathlib import Path

import torch
from extras import install
from torch import nn


def install_onnx_extra() -> None:
    install("onnx", "onnx")


def install_exporter() -> None:
    """torch.onnx.export's default exporter needs onnxscript, which a user exporting a model has; the explorer
    never imports it."""
    install("export", "onnxscript")


class Theirs(nn.Module):
    """Someone else's classifier: batch norm, average pooling, other activations and a view(x.size(0), -1), which
    exports as Shape, Gather, Unsqueeze, Concat and Reshape: operators the explorer's own ConvNet never uses."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.LeakyReLU(0.1), nn.AvgPool2d(2),
                                  nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.Tanh())
        self.embedding = nn.Sequential(nn.Linear(8 * 7 * 7, 32), nn.BatchNorm1d(32), nn.Sigmoid())
        self.logits = nn.Linear(32, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding(self.conv(x).view(x.size(0), -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.features(x))


def export(model: nn.Module, path: Path, shape: tuple[int, ...] = (1, 1, 28, 28)) -> Path:
    torch.onnx.export(model.eval(), torch.zeros(shape), path, dynamo=False, input_names=["x"],
                      output_names=["logits"], dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}})
    return path


def exported_with_defaults(model: nn.Module, path: Path) -> Path:
    """torch.onnx.export as a user calls it: one example image, every other argument left as it is. torch 2.13
    writes the weights to NAME.onnx.data beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model.eval(), (torch.zeros(1, 1, 28, 28),), path)
    return path


def doubling_graph(path: Path, doublings: int = 34) -> Path:
    """A 'classifier' of a few KB that asks for 2^34 copies of its input: Concat(x, x) again and again, then a
    dense layer."""
    import onnx
    from onnx import helper

    nodes, value = [], "x"
    for i in range(doublings):
        nodes.append(helper.make_node("Concat", [value, value], [f"d{i}"], axis=0))
        value = f"d{i}"
    nodes += [helper.make_node("Flatten", [value], ["flat"]),
              helper.make_node("Gemm", ["flat", "w", "b"], ["logits"], transB=1)]
    weights = [helper.make_tensor("w", onnx.TensorProto.FLOAT, [10, 784], [0.0] * 7840),
               helper.make_tensor("b", onnx.TensorProto.FLOAT, [10], [0.0] * 10)]
    graph = helper.make_graph(nodes, "doubling", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT,
                                                                                ["n", 1, 28, 28])],
                              [helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["m", 10])], weights)
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path
