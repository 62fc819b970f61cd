"""L-inf attacks on MNIST digits in pixel space, one file an attack, all behind one signature:
`attack(model, images, labels, kind, eps, **params)`."""

from explorer.attacks.common import AttackResult
from explorer.attacks.iterative import attack, run
from explorer.attacks.losses import LOSSES, attacker_loss
from explorer.attacks.params import KINDS, PRESETS, AttackParams, params_for

__all__ = ["KINDS", "LOSSES", "PRESETS", "AttackParams", "AttackResult", "attack", "attacker_loss", "params_for",
           "run"]
