"""What page 1's eps slider draws in the browser: one digit's attack over the whole eps grid, for each model,
packed small enough to send once (about 110 KB for two models), so that moving the slider needs no server.

Pictures travel as base64 bytes: the adversarial digits as greyscale (0..255), the perturbations as 127 + 127 v with
v = delta / eps in [-1, 1] (the colour scale of `figures.perturbation_image`).
"""

from __future__ import annotations

import base64
import hashlib
import json

import numpy as np

from explorer.evaluation.evaluate import EpsResponse


def _bytes(array: np.ndarray) -> str:
    return base64.b64encode(array.astype(np.uint8).tobytes()).decode("ascii")


def model_view(name: str, result: EpsResponse) -> dict:
    """One model's grid: pictures, probabilities (4 decimals), verdicts and the smallest eps that flips the digit."""
    clean = result.adversarial[0]  # the grid starts at eps 0, where the attack leaves the digit as it is
    eps = np.maximum(result.eps, 1e-12)[:, None, None]
    direction = np.clip((result.adversarial - clean) / eps, -1, 1)
    return {
        "name": name,
        "clean": _bytes(np.round(clean * 255)),
        "adversarial": _bytes(np.round(result.adversarial * 255)),
        "perturbation": _bytes(np.round(127 + 127 * direction)),
        "probabilities": np.round(result.probabilities.astype(np.float64), 4).tolist(),
        "predictions": result.predictions.tolist(),
        "clean_prediction": int(result.predictions[0]),
        "flip": result.smallest_flipping_eps,
        "last_eps": round(float(result.eps[-1]), 2),
    }


def payload(results: dict[str, EpsResponse], label: int, kind: str, eps: float,
            classes: tuple[str, ...] = tuple(str(c) for c in range(10))) -> dict:
    """Everything the browser view needs; it opens at the grid's eps nearest `eps`, and names classes `classes`.
    `id` changes with the digit, the models and the attack, never with `eps`, so the browser keeps its slider when
    only the server caught up."""
    grid = next(iter(results.values())).eps
    views = [model_view(name, result) for name, result in results.items()]
    identity = json.dumps([label, kind, grid.tolist(), views, classes], sort_keys=True).encode()
    return {
        "id": hashlib.sha1(identity).hexdigest()[:16],
        "eps": [round(float(value), 4) for value in grid],
        "start": int(np.argmin(np.abs(grid - eps))),
        "label": int(label),
        "kind": kind,
        "classes": list(classes),
        "models": views,
    }
