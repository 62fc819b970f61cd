"""Shareable links: the view a URL's query names (models, digit, attack, preset, eps, 2-D projection), read back
into valid values. A link can be stale or mistyped, so every bad value becomes the nearest valid one and a notice
that says what was changed; nothing here ever raises on what a URL holds.

    ?models=softmax,triplet&digit=0&attack=pgd&preset=paper&eps=0.2&projection=umap

The dataset is the models': `models=fashion-softmax,fashion-triplet` opens Fashion-MNIST, and `digit` is an index
into that dataset's test set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

FIELDS = ("models", "digit", "attack", "preset", "eps", "projection")


@dataclass
class Link:
    """The valid part of a link (None where the URL named nothing usable) and a notice for each value dropped."""

    models: list[str] | None = None
    dataset: str = "mnist"  # the models' dataset
    digit: int | None = None  # a test index among the dataset's bundled images
    attack: str | None = None
    preset: str | None = None
    eps: float | None = None  # a value of the eps grid
    projection: str | None = None
    notices: list[str] = field(default_factory=list)


def _choice(link: Link, name: str, text: str, options: Sequence[str]) -> str | None:
    value = text.strip().lower()
    if value in options:
        return value
    link.notices.append(f"The link's {name} {text!r} is not one of {', '.join(options)}: the default is shown.")
    return None


def _models(link: Link, text: str, available: Mapping[str, str]) -> list[str] | None:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in available]
    if unknown:
        link.notices.append(f"The link names {', '.join(repr(n) for n in unknown)}, which this server does not "
                            f"have: its checkpoints are {', '.join(available)}.")
    known = list(dict.fromkeys(name for name in names if name in available))
    if known:
        link.dataset = available[known[0]]
    if other := [name for name in known if available[name] != link.dataset]:
        link.notices.append(f"{', '.join(other)} learned another dataset than {known[0]} ({link.dataset}): the app "
                            "compares models of one dataset.")
        known = [name for name in known if available[name] == link.dataset]
    if len(known) > 2:
        link.notices.append(f"The app compares two models: showing {known[0]} and {known[1]}.")
    return known[:2] or None


def _nearest(link: Link, text: str, options: np.ndarray, parse: type, unreadable: str) -> float | None:
    """The option nearest the number `text` names, or None (and `unreadable` said) when it names none."""
    try:
        value = parse(text)
    except ValueError:
        value = None
    if value is None or not np.isfinite(value):
        link.notices.append(unreadable)
        return None
    return options[np.argmin(np.abs(options - value))].item()


def _digit(link: Link, text: str, bundled: np.ndarray) -> int | None:
    if len(bundled) == 0:
        link.notices.append(f"No {link.dataset} test images are bundled with this app: the link's digit is dropped.")
        return None
    nearest = _nearest(link, text, bundled, int,
                       f"The link's digit {text!r} is not a test index (a whole number from 0 to 9,999).")
    if nearest is not None and nearest != int(text):
        link.notices.append(f"Test digit #{int(text)} is not among the {len(bundled):,} bundled with the app: "
                            f"showing the nearest one, #{nearest}.")
    return nearest


def _eps(link: Link, text: str, grid: np.ndarray) -> float | None:
    nearest = _nearest(link, text, grid, float, f"The link's eps {text!r} is not a number.")
    if nearest is not None and abs(nearest - float(text)) > 1e-6:
        link.notices.append(f"eps {float(text):g} is not on the slider's grid ({grid[0]:g} to {grid[-1]:g} in steps "
                            f"of {grid[1] - grid[0]:g}): showing eps {nearest:.2f}.")
    return None if nearest is None else round(nearest, 4)


def read(query: Mapping[str, str], *, available: Mapping[str, str], bundled: Mapping[str, np.ndarray],
         kinds: Sequence[str], presets: Sequence[str], eps_grid: np.ndarray, projections: Sequence[str]) -> Link:
    """The view `query` names, each value checked against what this server offers: `available` maps each
    checkpoint to its dataset, `bundled` each dataset to the test indices of its bundled images."""
    link = Link()
    if text := query.get("models"):
        link.models = _models(link, text, available)
    if text := query.get("digit"):
        link.digit = _digit(link, text, np.asarray(bundled.get(link.dataset, [])))
    if text := query.get("attack"):
        link.attack = _choice(link, "attack", text, kinds)
    if text := query.get("preset"):
        link.preset = _choice(link, "preset", text, presets)
    if text := query.get("eps"):
        link.eps = _eps(link, text, np.asarray(eps_grid, dtype=float))
    if text := query.get("projection"):
        link.projection = _choice(link, "projection", text, projections)
    return link


def query(*, models: Sequence[str], digit: int | None, attack: str, preset: str, eps: float,
          projection: str | None = None) -> dict[str, str]:
    """The query that names a view (`digit` None for an upload or a drawing, which a link cannot carry)."""
    values = {"models": ",".join(models), "digit": None if digit is None else str(digit), "attack": attack,
              "preset": preset, "eps": f"{eps:.2f}", "projection": projection}
    return {key: value for key, value in values.items() if value is not None}
