"""The paper's Figure 1 for any model: the same digits under FGSM, BIM, MIM and PGD, each labelled with its true
class y and the model's prediction on the adversarial digit."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from explorer import attacks, data, models
from explorer.evaluation import evaluate
from explorer.plots import figures

SCALE = 3


@dataclass(frozen=True)
class Gallery:
    """Numpy only, so a page can cache it and the CLI can draw it without holding tensors."""

    model: str
    eps: float
    preset: str
    indices: np.ndarray  # int (N,): each digit's index in the MNIST test set
    labels: np.ndarray  # int (N,): the true classes
    adversarial: dict[str, np.ndarray]  # attack kind -> float32 (N, 28, 28) in [0, 1]
    predictions: dict[str, np.ndarray]  # attack kind -> int (N,): the model's class for each adversarial digit

    def fooled(self, kind: str) -> np.ndarray:
        return self.predictions[kind] != self.labels


def pick_digits(labels: np.ndarray, count: int = 10, seed: int | None = None) -> np.ndarray:
    """Positions of `count` digits among `labels`.

    Without a seed: the first digit of class 0, of class 1, ..., of class 9, then each class's second, and so on, so
    ten digits show every class once. With a seed: `count` distinct digits drawn at random.
    """
    if not 1 <= count <= len(labels):
        raise ValueError(f"count must be in 1..{len(labels)}, not {count}")
    if seed is not None:
        return np.sort(np.random.default_rng(seed).choice(len(labels), count, replace=False))
    by_class = [np.flatnonzero(labels == c) for c in range(10)]
    return np.array([by_class[k % 10][k // 10] for k in range(count)])


def attack_digits(model: models.ConvNet, images: np.ndarray, labels: np.ndarray, indices: np.ndarray, eps: float,
                  preset: str = "paper", seed: int = 0) -> Gallery:
    """Attack uint8 digits (N, 28, 28) with each of the four attacks, all digits in one call per attack."""
    x, y = data.to_tensor(images), torch.from_numpy(np.asarray(labels, dtype=np.int64))
    adversarial, predictions = {}, {}
    for kind in attacks.KINDS:
        adv = attacks.run(model, x, y, kind, eps, preset=preset, seed=seed).adversarial[0]
        with torch.no_grad():
            predictions[kind] = model(adv).argmax(1).numpy()
        adversarial[kind] = adv[:, 0].numpy()
    return Gallery(model=model.card["name"], eps=float(eps), preset=preset,
                   indices=np.asarray(indices), labels=y.numpy(), adversarial=adversarial, predictions=predictions)


def shown_digits(gallery: Gallery, fooled_only: bool = False) -> list[int]:
    """Positions of the digits to draw: all, or those that at least one attack fooled."""
    if not fooled_only:
        return list(range(len(gallery.labels)))
    any_fooled = evaluate.fooled_by_any(gallery.fooled(kind) for kind in attacks.KINDS)
    return torch.nonzero(any_fooled).flatten().tolist()


def rows(gallery: Gallery, fooled_only: bool = False, scale: int = SCALE) -> list[figures.Row]:
    """One row per attack, one column per digit, captioned "y=7 -> 3"; fooled digits marked.

    With `fooled_only`, digits no attack fooled are dropped and an attack's unfooled digits leave a gap, so each column
    is still one digit and the rows can be compared.
    """
    table = []
    for kind in attacks.KINDS:
        fooled = gallery.fooled(kind)
        tiles: list[figures.Tile | None] = []
        for i in shown_digits(gallery, fooled_only):
            if fooled_only and not fooled[i]:
                tiles.append(None)
                continue
            caption = f"y={gallery.labels[i]} -> {gallery.predictions[kind][i]}"
            tiles.append(figures.Tile(figures.digit_image(gallery.adversarial[kind][i], scale), caption,
                                      bool(fooled[i])))
        table.append((kind.upper(), tiles))
    return table


def render(gallery: Gallery, fooled_only: bool = False, scale: int = SCALE) -> Image.Image:
    """The gallery as one picture, titled with the model, eps and preset."""
    title = f"{gallery.model}, eps = {gallery.eps:.2f}, {gallery.preset} preset (red: fooled)"
    return figures.grid(rows(gallery, fooled_only, scale), title)
