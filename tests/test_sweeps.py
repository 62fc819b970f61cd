"""Accuracy against eps, computed live on a few bundled images, in the committed sweeps' layout."""

import numpy as np

from explorer import attacks, data
from explorer.evaluation import sweeps


def test_a_live_sweep_has_the_committed_layout_and_shows_digits_at_their_flipping_eps(softmax_model):
    images, labels, indices = data.load_sample()
    stages = []
    live = sweeps.live({"softmax": softmax_model}, images, labels, indices, "paper", 5, examples=2,
                       on_stage=lambda stage, done: stages.append(done))
    chosen = sweeps.spread(5, len(labels))
    curves = live["accuracy"]["softmax"]["paper"]
    assert set(curves) == set(attacks.KINDS) and all(len(c) == len(sweeps.EPS_GRID) for c in curves.values())
    assert curves["pgd"][0] == 1.0 and curves["pgd"][-1] == 0.0  # softmax: every digit falls by eps 0.5
    assert stages == sorted(stages) and stages[0] == 0 and stages[-1] < 1
    examples = live["flips"]["softmax"]
    assert len(examples) == 2
    for (picture, caption), position in zip(examples, chosen, strict=False):
        assert picture.shape == (28, 28) and caption.startswith(f"#{indices[position]}: {labels[position]} → ")


def test_a_flipped_image_is_named_by_its_class_names(softmax_model):
    images, labels, indices = data.load_sample()
    one = sweeps.spread(1, len(labels))
    names = tuple(f"class-{c}" for c in range(10))
    [(_, caption)] = sweeps.flipping_examples(softmax_model, data.to_tensor(images[one]),
                                              np.asarray(labels[one]), indices[one], "paper", 1, names)
    assert caption.startswith(f"#{indices[one[0]]}: class-{labels[one[0]]} → class-")
