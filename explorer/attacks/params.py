"""How each attack runs: its parameters, and the `paper` and `strong` presets of the paper's four attacks."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from explorer.attacks.losses import LOSSES, UNTARGETED_LOSSES

# The paper's four: Table 1's columns, the sweeps and the gallery. New attacks never join them silently.
KINDS = ("fgsm", "bim", "mim", "pgd")
# The attacks a converged evaluation adds (AutoAttack's, and two aimed at this defence); one setting each, not
# a preset's.
STRONGER_KINDS = ("apgd-ce", "apgd-dlr", "apgd-t", "apgd-odi", "latent", "transfer", "square")
ALL_KINDS = KINDS + STRONGER_KINDS
# Fields only some attacks use; left None, they are not recorded (result files made before they existed still
# match).
OPTIONAL_FIELDS = ("targets", "p_init", "source")


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
    targets: int | None = None  # APGD-T: how many target classes, the clean logits' runners-up, each in turn
    p_init: float | None = None  # Square: the share of pixels the first squares cover
    source: str | None = None  # transfer: the checkpoint(s) the digits are made on, "a+b" for an ensemble

    def as_record(self) -> dict:
        """The parameters as result files record them."""
        return {k: v for k, v in asdict(self).items() if not (k in OPTIONAL_FIELDS and v is None)}


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
# AutoAttack's standard settings (Croce and Hein 2020): 100 iterations from a random start, the step size 2 eps
# halved as progress stalls; APGD-T tries the 9 runners-up of the clean logits as targets; Square spends 5,000
# queries. The latent attack runs APGD on the embedding loss; the transfer attack APGD-CE on another model.
_STRONGER = {
    "apgd-ce": AttackParams(steps=100, step_size=None, random_start=True, loss="ce", early_stop=True),
    "apgd-dlr": AttackParams(steps=100, step_size=None, random_start=True, loss="dlr", early_stop=True),
    "apgd-t": AttackParams(steps=100, step_size=None, random_start=True, loss="dlr-targeted", early_stop=True,
                           targets=9),
    # APGD-CE from output-diversified starts: the converged evaluation's escalation rounds set steps and restarts
    "apgd-odi": AttackParams(steps=100, step_size=None, random_start=True, loss="ce", early_stop=True),
    "latent": AttackParams(steps=100, step_size=None, random_start=True, loss="latent", early_stop=True),
    "transfer": AttackParams(steps=100, step_size=None, random_start=True, loss="ce", early_stop=True,
                             source="softmax"),
    "square": AttackParams(steps=5000, step_size=None, random_start=True, loss="margin", early_stop=True,
                           p_init=0.8),
}
# Which losses each attack can ascend: the targeted and latent losses need what only their attacks supply.
_LOSSES_OF = {**{kind: UNTARGETED_LOSSES for kind in KINDS}, "apgd-ce": ("ce",), "apgd-dlr": ("dlr",),
              "apgd-t": ("dlr-targeted",), "apgd-odi": ("ce",), "latent": ("latent",), "transfer": UNTARGETED_LOSSES,
              "square": ("margin",)}


def preset_params(kind: str, preset: str = "paper") -> AttackParams:
    """What `kind` runs with under `preset`. The presets are of the paper's four attacks; the stronger ones have
    AutoAttack's settings whatever the preset."""
    if kind not in ALL_KINDS:
        raise ValueError(f"unknown attack {kind!r}; choose one of {', '.join(ALL_KINDS)}")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[preset][kind] if kind in KINDS else _STRONGER[kind]


def params_for(kind: str, preset: str = "paper", **changes) -> AttackParams:
    """`preset`'s parameters for `kind` with `changes` made, each as given (step_size=None is eps / steps),
    checked."""
    names = {f.name for f in fields(AttackParams)}
    if unknown := set(changes) - names:
        raise ValueError(f"unknown attack parameter(s) {sorted(unknown)}; known: {sorted(names)}")
    params = replace(preset_params(kind, preset), **changes)
    if params.steps < 1:
        raise ValueError(f"steps must be at least 1, not {params.steps}")
    if params.restarts < 1:
        raise ValueError(f"restarts must be at least 1, not {params.restarts}")
    if params.step_size is not None and params.step_size <= 0:
        raise ValueError(f"step_size must be positive, not {params.step_size}")
    if params.loss not in LOSSES:
        raise ValueError(f"unknown loss {params.loss!r}; choose one of {', '.join(LOSSES)}")
    if params.loss not in _LOSSES_OF[kind]:
        raise ValueError(f"{kind} cannot use the loss {params.loss!r}; choose one of {', '.join(_LOSSES_OF[kind])}")
    if params.targets is not None and not 1 <= params.targets <= 9:
        raise ValueError(f"targets must be between 1 and 9 (the other classes), not {params.targets}")
    if params.p_init is not None and not 0 < params.p_init <= 1:
        raise ValueError(f"p_init must lie in (0, 1], not {params.p_init}")
    if params.decay < 0:
        raise ValueError(f"decay must be non-negative, not {params.decay}")
    return params


@dataclass(frozen=True)
class Attack:
    """One attack as it will run: made once, where a user chose it (the app's widgets, the CLI, a link), and passed
    down to the kernel unchanged. `preset` is what it started from; `params` is what runs."""

    kind: str
    params: AttackParams
    preset: str = "paper"

    @classmethod
    def of(cls, kind: str, preset: str = "paper", **changes) -> Attack:
        return cls(kind, params_for(kind, preset, **changes), preset)

    def changes(self) -> dict[str, object]:
        """The parameters that differ from the preset's: what a user changed, and what a link carries."""
        start = asdict(preset_params(self.kind, self.preset))
        return {name: value for name, value in asdict(self.params).items() if value != start[name]}
