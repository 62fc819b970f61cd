"""A classifier made outside the project and exported to ONNX, as a user would bring one."""

from pathlib import Path

import torch
from extras import install
from torch import nn


def install_onnx_extra() -> None:
    install("onnx", "onnx")


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
