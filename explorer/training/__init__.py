"""Training: the recipes (recipes.py), what one batch does (step.py), the resumable loop (loop.py, state.py), and
the paper's method's own parts, the triplet loss and its miners (losses.py, miners.py)."""

from explorer.training.loop import TrainingError, train
from explorer.training.recipes import RECIPES, Recipe, checkpoint_name
from explorer.training.step import accuracy, adversary_eps, batch_loss, learning_rate

__all__ = ["RECIPES", "Recipe", "TrainingError", "accuracy", "adversary_eps", "batch_loss", "checkpoint_name",
           "learning_rate", "train"]
