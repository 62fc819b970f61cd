"""L-inf attacks on MNIST digits in pixel space, one file an attack, all behind one signature:
`attack(model, images, labels, attack, eps)` at one eps, `attack_grid` at several, `run` for the full result, where
`attack` is an Attack (its kind and every parameter, made once where a user chose it) or a kind with a preset and
changes."""

from explorer.attacks.common import AttackResult
from explorer.attacks.dispatch import attack, attack_grid, resolve, run
from explorer.attacks.losses import LOSSES, UNTARGETED_LOSSES, attacker_loss
from explorer.attacks.params import (
    ALL_KINDS,
    KINDS,
    PRESETS,
    STRONGER_KINDS,
    Attack,
    AttackParams,
    params_for,
    preset_params,
)

__all__ = ["ALL_KINDS", "KINDS", "LOSSES", "PRESETS", "STRONGER_KINDS", "UNTARGETED_LOSSES", "Attack",
           "AttackParams", "AttackResult", "attack", "attack_grid", "attacker_loss", "params_for", "preset_params",
           "resolve", "run"]
