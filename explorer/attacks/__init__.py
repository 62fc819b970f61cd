"""L-inf attacks on MNIST digits in pixel space, one file an attack, all behind one signature:
`attack(model, images, labels, kind, eps, **params)` at one eps, `attack_grid` at several, `run` for the full
result."""

from explorer.attacks.common import AttackResult
from explorer.attacks.dispatch import attack, attack_grid, run
from explorer.attacks.losses import LOSSES, UNTARGETED_LOSSES, attacker_loss
from explorer.attacks.params import ALL_KINDS, KINDS, PRESETS, STRONGER_KINDS, AttackParams, params_for

__all__ = ["ALL_KINDS", "KINDS", "LOSSES", "PRESETS", "STRONGER_KINDS", "UNTARGETED_LOSSES", "AttackParams",
           "AttackResult", "attack", "attack_grid", "attacker_loss", "params_for", "run"]
