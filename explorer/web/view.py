"""What every page of the app shows: the dataset, the two models, the digit, the attack and the eps. One View is
built per run, before any page, from what the user chose (or a link named) and one set of defaults; every page
reads it, and speaks its dataset's language.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explorer import attacks, data
from explorer.web import links

DEFAULT_EPS = 0.3  # the paper's budget
DEFAULT_CLASS = 7  # the first image of this class in the bundled sample
DEFAULT_KIND = attacks.KINDS[0]  # FGSM, the paper's first column
DEFAULT_PROJECTION = "pca"


@dataclass(frozen=True, eq=False)
class Digit:
    """The image every page attacks: a bundled test image, an upload or a drawing (one image is itself, not
    any equal array)."""

    image: np.ndarray  # float32 (28, 28) in [0, 1]
    label: int
    name: str  # "test digit #7", "upload seven.png", "drawing"
    test_index: int | None = None  # None for an upload or a drawing, which a link cannot carry


def test_digit(images: np.ndarray, labels: np.ndarray, indices: np.ndarray, position: int, item: str) -> Digit:
    """The bundled sample's image at `position`, as the CLI and the evaluations attack it (to the last bit)."""
    image = data.to_tensor(images[position : position + 1])[0, 0].numpy()
    return Digit(image, int(labels[position]), f"test {item} #{indices[position]}", int(indices[position]))


def default_digit(images: np.ndarray, labels: np.ndarray, indices: np.ndarray, item: str) -> Digit:
    return test_digit(images, labels, indices, int(np.flatnonzero(labels == DEFAULT_CLASS)[0]), item)


@dataclass(frozen=True)
class View:
    """One run's view of the app; the defaults are the one set every page starts from."""

    dataset: str
    models: tuple[str, ...]
    digit: Digit
    attack: attacks.Attack
    eps: float = DEFAULT_EPS
    projection: str = DEFAULT_PROJECTION

    def link(self, *, projection: bool = False, digit: bool = True) -> dict[str, str]:
        """The query that opens this view (the 2-D projection and the digit only where the page shows them)."""
        return links.query(models=self.models, digit=self.digit.test_index if digit else None, attack=self.attack,
                           eps=self.eps, projection=self.projection if projection else None)


def attack_page_title(item: str) -> str:
    """Page 1's title, in its dataset's language."""
    return f"Attack {'an' if item[0] in 'aeiou' else 'a'} {item}"
