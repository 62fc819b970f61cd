"""The result files in results/: the one reader the app uses, the one writer every evaluation uses, and the one rule
by which a re-run keeps the rows it does not make.

A result file holds rows (one per model, in one or more parts: Table 1 keeps a model's rows in six) and settings:
everything else in it. A run of some models keeps the other models' rows from the file already there only when
that file was made with the same settings and its rows are of the weights shipped now; anything else is refused
before any attack runs, with what to do instead.
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from explorer import files

COMMITTED = Path(__file__).resolve().parents[2] / "results"


@dataclass(frozen=True)
class Layout:
    """Where a kind of result file keeps its rows and the settings a run may take from it."""

    name: str  # the file is NAME.json
    parts: tuple[tuple[str, ...], ...] = (("models",),)  # where the per-model rows are
    settings: dict[str, tuple[str, ...]] = field(default_factory=dict)  # option -> where the file records it
    complete: bool = True  # holds every model's rows (a table), or grows one model at a time
    derived: tuple[str, ...] = ()  # re-derived from the rows at each write, so no setting


def results_folder(results: Path, dataset: str) -> Path:
    """MNIST's files in `results`, another dataset's in `results`/DATASET."""
    return results if dataset == "mnist" else results / dataset


def committed(name: str, dataset: str = "mnist") -> dict:
    """A committed result file by name ("table1", "sweeps", "latent", "converged"), as the app shows it."""
    return json.loads((results_folder(COMMITTED, dataset) / f"{name}.json").read_text(encoding="utf-8"))


def how_made(content: dict) -> str:
    """One line on the runs behind a result file's rows, for captions: rows re-run apart say so."""
    runs: dict[tuple[str, str, str], list[str]] = {}
    for row, entry in content["models"].items():
        run = entry["evaluated"]
        device = run["device"]
        if adopted := run.get("adopted"):
            device += f" ({adopted['batches']} batches earlier on {adopted['device']}, torch {adopted['torch']})"
        runs.setdefault((device, run["code_version"], run["date"][:10]), []).append(row)
    return f"`{content['made_by']['command']}`: " + "; ".join(
        f"{', '.join(rows)} on {device}, code {code}, {day}" for (device, code, day), rows in runs.items())


def write(path: Path, content: dict) -> None:
    """Whole or not at all: an interrupted write leaves the file as it was."""
    files.write_text(path, json.dumps(content, indent=2) + "\n")


class ResultsError(ValueError):
    """A request that would mix results made in different ways; the message says what to run instead."""


def _at(content: dict, where: tuple[str, ...]) -> object:
    return functools.reduce(operator.getitem, where, content)


def _checkpoint(content: dict, key: str) -> str:
    """The checkpoint a row key names: Table 1's rows ("Softmax") record theirs."""
    return content["models"][key].get("checkpoint", key)


def _leaves(value: object, where: tuple[str, ...] = ()) -> dict[tuple[str, ...], object]:
    if not isinstance(value, dict):
        return {where: value}
    return {leaf: item for key, inner in value.items() for leaf, item in _leaves(inner, (*where, key)).items()}


class Earlier:
    """The result file a run of some models joins, and the rows `keep` (of the models it does not run) it takes from
    there. Everything the run reads from the file is read here, so a damaged file stops it before any attack."""

    def __init__(self, folder: Path, layout: Layout, keep: Iterable[str]) -> None:
        self.path, self.layout = folder / f"{layout.name}.json", layout
        self.content: dict | None = None
        self.keep: list[str] = []
        self._settings: dict[str, object] = {}
        keep = list(keep)
        if not keep:
            return
        if not self.path.is_file():
            if layout.complete:
                raise ResultsError(f"{self.path} does not exist yet, so there are no other models' rows to keep: "
                                   "evaluate all the models first (leave out --models)")
            return
        try:
            self.content = json.loads(self.path.read_text(encoding="utf-8"))
            for part in layout.parts if layout.complete else ():
                rows = _at(self.content, part)
                if missing := [key for key in keep if key not in rows]:
                    name = self.content["models"].get(missing[0], {}).get("checkpoint", missing[0])
                    raise ResultsError(f"{self.path} has no row for {name} in {'.'.join(part)}: add {name} to "
                                       "--models, or leave out --models")
            self.keep = [key for key in keep if key in self.content["models"]]
            if self.keep and (not isinstance(self.content["made_by"], dict) or not all(
                    isinstance(self.content["models"][key]["weights_sha256"], str) for key in self.keep)):
                raise TypeError("made_by or a row's weights_sha256 is not what this code writes")
            if self.keep:
                self._settings = {option: _at(self.content, where) for option, where in layout.settings.items()}
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ResultsError(f"{self.path} is damaged or older than this code ({type(exc).__name__}: {exc}): "
                               "evaluate all the models (leave out --models), or restore the file with git") from exc

    def options(self, asked: dict[str, object], defaults: dict[str, object]) -> dict[str, object]:
        """Options left unset take the file's values when rows are kept from it (adding a row needs no flags),
        else the defaults."""
        fallback = self._settings if self.keep else defaults
        return {key: value if value is not None else fallback[key] for key, value in asked.items()}

    def check(self, fresh: dict, shipped_weights: dict[str, str]) -> None:
        """Refuse to keep rows unless the file's settings (all but its rows and what is derived from them) are
        `fresh`'s, and its rows are of the weights shipped now (checkpoint -> weights_sha256)."""
        if not self.keep:
            return
        ours, theirs = (_leaves(self._settings_of(content)) for content in (fresh, self.content))
        named = {where: option for option, where in self.layout.settings.items()}
        differing = sorted({named.get(where, where[-1]) for where in ours.keys() | theirs.keys()
                            if where != ("made_by", "command") and ours.get(where) != theirs.get(where)})
        if differing:
            raise ResultsError(f"{self.path} was made with other settings ({', '.join(differing)}): to keep its "
                               "other rows, re-run with the settings it records, or evaluate all the models (leave "
                               "out --models)")
        for key in self.keep:
            name = _checkpoint(self.content, key)
            if self.content["models"][key]["weights_sha256"] != shipped_weights[name]:
                raise ResultsError(f"{self.path} holds {name} as it was before its checkpoint changed: add {name} "
                                   "to --models, or leave out --models")

    def _settings_of(self, content: dict) -> dict:
        settings = {key: value for key, value in content.items() if key not in self.layout.derived}
        for part in self.layout.parts:
            *outer, last = part
            inner = _at(settings, tuple(outer)) if outer else settings
            settings = _replaced(settings, tuple(outer), {**inner, last: None})
        return settings

    def merge(self, fresh: dict, order: Iterable[str]) -> dict:
        """`fresh` with the kept rows beside its own in each part, every part in `order` (a complete file's
        rows all present), and written."""
        merged = json.loads(json.dumps(fresh))
        for part in self.layout.parts:
            *outer, last = part
            ours = _at(fresh, part)
            theirs = _at(self.content, part) if self.keep else {}
            rows = {key: ours[key] if key in ours else theirs[key] for key in order
                    if key in ours or key in self.keep}
            merged = _replaced(merged, tuple(outer), {**(_at(merged, tuple(outer)) if outer else merged), last: rows})
        write(self.path, merged)
        return merged


def _replaced(content: dict, where: tuple[str, ...], value: dict) -> dict:
    """`content` with the dict at `where` replaced by `value` (a copy along the way, the rest shared)."""
    if not where:
        return value
    return {**content, where[0]: _replaced(content[where[0]], where[1:], value)}
