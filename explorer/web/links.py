"""Shareable links: the view a URL's query names (models, digit, attack, preset and every attack parameter a user
changed from it, eps, 2-D projection), read back into valid values. A link can be stale or mistyped, so every bad
value becomes the nearest valid one and a notice that says what was changed; nothing here ever raises on what a
URL holds.

    ?models=softmax,triplet&digit=0&attack=pgd&preset=paper&steps=7&step_size=eps/steps&eps=0.2&projection=umap

The dataset is the models': `models=fashion-softmax,fashion-triplet` opens Fashion-MNIST, and `digit` is an index
into that dataset's test set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from explorer import attacks, data

# The attack parameters a user can change in the app, with the ranges its widgets (and so links) allow.
LIMITS = {"steps": (1, 100), "step_size": (0.001, 0.5), "restarts": (1, 5), "decay": (0.0, 2.0)}
CHANGEABLE = ("steps", "step_size", "restarts", "random_start", "decay", "loss")
EPS_OVER_STEPS = "eps/steps"  # a step_size of None: eps divided by the steps


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
    changes: dict[str, object] = field(default_factory=dict)  # attack parameters changed from the preset's
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
        link.notices.append(f"Test {data.DATASETS[link.dataset].item} #{int(text)} is not among the "
                            f"{len(bundled):,} bundled with the app: showing the nearest one, #{nearest}.")
    return nearest


def _eps(link: Link, text: str, grid: np.ndarray) -> float | None:
    nearest = _nearest(link, text, grid, float, f"The link's eps {text!r} is not a number.")
    if nearest is not None and abs(nearest - float(text)) > 1e-6:
        link.notices.append(f"eps {float(text):g} is not on the slider's grid ({grid[0]:g} to {grid[-1]:g} in steps "
                            f"of {grid[1] - grid[0]:g}): showing eps {nearest:.2f}.")
    return None if nearest is None else round(nearest, 4)


_UNREADABLE = object()


def _parsed(name: str, text: str) -> object:
    """The value `text` names for the attack parameter `name`, or _UNREADABLE."""
    if name == "loss":
        return text if text in attacks.UNTARGETED_LOSSES else _UNREADABLE
    if name == "random_start":
        return {"true": True, "false": False}.get(text, _UNREADABLE)
    if name == "step_size" and text == EPS_OVER_STEPS:
        return None
    try:
        value = (int if name in ("steps", "restarts") else float)(text)
    except ValueError:
        return _UNREADABLE
    return value if np.isfinite(value) else _UNREADABLE


def _change(link: Link, name: str, text: str) -> None:
    """One attack parameter the link changes, read and brought into the widgets' range."""
    value = _parsed(name, text.strip().lower())
    if value is _UNREADABLE:
        link.notices.append(f"The link's {name} {text!r} cannot be read: the preset's value is shown.")
        return
    if name in LIMITS and value is not None:
        low, high = LIMITS[name]
        if not low <= value <= high:
            value = min(max(value, low), high)
            link.notices.append(f"The app's {name} goes from {low:g} to {high:g}: showing {value:g}.")
    link.changes[name] = value


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
    for name in CHANGEABLE:
        if text := query.get(name):
            _change(link, name, text)
    if link.changes:
        try:
            attacks.params_for(link.attack or kinds[0], link.preset or "paper", **link.changes)
        except ValueError as error:
            link.notices.append(f"The link's attack parameters do not fit together ({error}): the preset's are "
                                "shown.")
            link.changes = {}
    if text := query.get("eps"):
        link.eps = _eps(link, text, np.asarray(eps_grid, dtype=float))
    if text := query.get("projection"):
        link.projection = _choice(link, "projection", text, projections)
    return link


def spelled(value: object) -> str:
    """An attack parameter's value as links (and the CLI) write it."""
    if value is None:
        return EPS_OVER_STEPS
    return str(value).lower() if isinstance(value, bool) else f"{value:g}" if isinstance(value, float) else str(value)


def query(*, models: Sequence[str], digit: int | None, attack: attacks.Attack, eps: float,
          projection: str | None = None) -> dict[str, str]:
    """The query that names a view (`digit` None for an upload or a drawing, which a link cannot carry): the attack
    by its kind, its preset and each parameter changed from the preset's."""
    values = {"models": ",".join(models), "digit": None if digit is None else str(digit), "attack": attack.kind,
              "preset": attack.preset, **{name: spelled(value) for name, value in attack.changes().items()},
              "eps": f"{eps:.2f}", "projection": projection}
    return {key: value for key, value in values.items() if value is not None}
