"""How each attack runs: its parameters, and the `paper` and `strong` presets of the paper's four attacks."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from explorer.attacks.losses import LOSSES

KINDS = ("fgsm", "bim", "mim", "pgd")


@dataclass(frozen=True)
class AttackParams:
    """How an attack runs. `step_size=None` means eps / steps (FGSM: one step of eps; BIM and MIM: eps/10)."""

    steps: int
    step_size: float | None
    random_start: bool
    decay: float = 0.0
    loss: str = "ce"
    restarts: int = 1
    early_stop: bool = False  # keep each digit's first misclassified iterate and stop attacking it


_PAPER = {
    "fgsm": AttackParams(steps=1, step_size=None, random_start=False),
    "bim": AttackParams(steps=10, step_size=None, random_start=False),
    "mim": AttackParams(steps=10, step_size=None, random_start=False, decay=1.0),
    # Madry et al.'s MNIST setting
    "pgd": AttackParams(steps=40, step_size=0.01, random_start=True),
}
_STRONG = {
    "fgsm": AttackParams(steps=1, step_size=None, random_start=False, loss="margin", early_stop=True),
    "bim": AttackParams(steps=100, step_size=0.01, random_start=False, loss="margin", early_stop=True),
    "mim": AttackParams(steps=100, step_size=0.01, random_start=False, decay=1.0, loss="margin", early_stop=True),
    "pgd": AttackParams(steps=100, step_size=0.01, random_start=True, loss="margin", restarts=5, early_stop=True),
}
PRESETS: dict[str, dict[str, AttackParams]] = {"paper": _PAPER, "strong": _STRONG}


def params_for(kind: str, preset: str = "paper", **overrides) -> AttackParams:
    """A preset's parameters for `kind`, with any keyword overriding it (None leaves the preset's value)."""
    if kind not in KINDS:
        raise ValueError(f"unknown attack {kind!r}; choose one of {', '.join(KINDS)}")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    names = {f.name for f in fields(AttackParams)}
    if unknown := set(overrides) - names:
        raise ValueError(f"unknown attack parameter(s) {sorted(unknown)}; known: {sorted(names)}")
    params = replace(PRESETS[preset][kind], **{k: v for k, v in overrides.items() if v is not None})
    if params.steps < 1:
        raise ValueError(f"steps must be at least 1, not {params.steps}")
    if params.restarts < 1:
        raise ValueError(f"restarts must be at least 1, not {params.restarts}")
    if params.step_size is not None and params.step_size <= 0:
        raise ValueError(f"step_size must be positive, not {params.step_size}")
    if params.loss not in LOSSES:
        raise ValueError(f"unknown loss {params.loss!r}; choose one of {', '.join(LOSSES)}")
    if params.decay < 0:
        raise ValueError(f"decay must be non-negative, not {params.decay}")
    return params
