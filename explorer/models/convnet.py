"""The paper's ConvNet: pixels in [0, 1] in, 10 logits out, its 64-d penultimate layer the latent space."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
EMBEDDING_DIM = 64


def conv_block(channels_in: int, channels_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_out, 5, padding=2), nn.ReLU(),
        nn.Conv2d(channels_out, channels_out, 5, padding=2), nn.ReLU(),
        nn.MaxPool2d(2),
    )


class ConvNet(nn.Module):
    """Three blocks of two 5x5 convolutions (32, 64, 64), Dense 512, Dense 64 (the embedding), Dense 10.

    Takes pixels in [0, 1]; the normalisation lives inside so attacks work in pixel space.
    """

    embedding_dim = EMBEDDING_DIM

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(MNIST_MEAN), persistent=False)
        self.register_buffer("std", torch.tensor(MNIST_STD), persistent=False)
        self.features = nn.Sequential(conv_block(1, 32), conv_block(32, 64), conv_block(64, 64), nn.Flatten())
        self.dense = nn.Sequential(nn.Linear(64 * 3 * 3, 512), nn.ReLU(), nn.Linear(512, EMBEDDING_DIM))
        self.classifier = nn.Linear(EMBEDDING_DIM, 10)
        self.card: dict[str, Any] = {}

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The 64-d penultimate features: the latent space the triplet loss shapes."""
        return self.dense(self.features((x - self.mean) / self.std))

    def head(self, z: torch.Tensor) -> torch.Tensor:
        """Logits from embeddings."""
        return self.classifier(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


