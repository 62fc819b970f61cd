"""The result files in results/: the reader the app uses (`committed`, `how_made`) and what every writer shares.
What `explorer evaluate` writes into them is reports.py."""

from __future__ import annotations

import json
from pathlib import Path

from explorer import files

COMMITTED = Path(__file__).resolve().parents[2] / "results"


def committed(name: str, dataset: str = "mnist") -> dict:
    """A committed result file by name ("table1", "sweeps", "latent", "converged"), as the app shows it."""
    return json.loads((results_folder(COMMITTED, dataset) / f"{name}.json").read_text())


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


def write_json(path: Path, content: dict) -> None:
    files.write_text(path, json.dumps(content, indent=2) + "\n")


class ResultsError(ValueError):
    """A request that would mix results made in different ways; the message says what to run instead."""


def results_folder(results: Path, dataset: str) -> Path:
    """MNIST's files in `results`, another dataset's in `results`/DATASET."""
    return results if dataset == "mnist" else results / dataset
