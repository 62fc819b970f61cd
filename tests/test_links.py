"""Shareable links: every value a URL can hold is read back into a valid view, with a notice for each change."""

import numpy as np
import pytest

from explorer import attacks
from explorer.evaluation import sweeps
from explorer.web import links

OFFER = {"available": {"softmax": "mnist", "triplet": "mnist", "triplet-pgd": "mnist",
                       "fashion-softmax": "fashion-mnist"},
         "bundled": {"mnist": np.array([3, 10, 42, 9_000]), "fashion-mnist": np.array([5, 7])},
         "kinds": ["fgsm", "bim", "mim", "pgd"], "presets": ["paper", "strong"],
         "eps_grid": np.array(sweeps.EPS_GRID), "projections": ["pca", "umap"]}


def test_a_good_link_reads_back_exactly_what_it_was_made_from():
    changed = attacks.Attack.of("pgd", "strong", steps=7, step_size=None, random_start=False, decay=0.5, loss="ce",
                                restarts=2)
    query = links.query(models=["triplet", "softmax"], digit=42, attack=changed, eps=0.2, projection="umap")
    assert query["step_size"] == "eps/steps" and query["random_start"] == "false"
    link = links.read(query, **OFFER)
    assert (link.models, link.digit, link.attack, link.preset, link.eps, link.projection) == (
        ["triplet", "softmax"], 42, "pgd", "strong", 0.2, "umap")
    assert attacks.Attack.of(link.attack, link.preset, **link.changes) == changed
    assert link.notices == []
    unchanged = links.query(models=["triplet"], digit=None, attack=attacks.Attack.of("bim", "strong"), eps=0.3)
    assert unchanged == {"models": "triplet", "attack": "bim", "preset": "strong", "eps": "0.30"}


@pytest.mark.parametrize(("query", "changes", "notice"), [
    ({"steps": "500"}, {"steps": 100}, "goes from 1 to 100: showing 100"),
    ({"steps": "many"}, {}, "steps 'many' cannot be read"),
    ({"step_size": "0"}, {"step_size": 0.001}, "showing 0.001"),
    ({"step_size": "inf"}, {}, "cannot be read"),
    ({"loss": "latent"}, {}, "loss 'latent' cannot be read"),
    ({"random_start": "maybe"}, {}, "cannot be read"),
    ({"attack": "fgsm", "decay": "1.5", "restarts": "9"}, {"decay": 1.5, "restarts": 5}, "showing 5"),
])
def test_bad_attack_parameters_become_the_nearest_valid_ones_with_a_notice(query, changes, notice):
    link = links.read(query, **OFFER)
    assert link.changes == changes
    [message] = link.notices
    assert notice in message


@pytest.mark.parametrize(("query", "field", "value", "notice"), [
    ({"models": "softmax,gone"}, "models", ["softmax"], "'gone'"),
    ({"models": "gone"}, "models", None, "'gone'"),
    ({"models": "softmax,triplet,triplet-pgd"}, "models", ["softmax", "triplet"], "two models"),
    ({"models": "softmax,fashion-softmax"}, "models", ["softmax"], "models of one dataset"),
    ({"models": "fashion-softmax", "digit": "42"}, "digit", 7, "Test image #42 is not among"),
    ({"digit": "40"}, "digit", 42, "nearest one, #42"),
    ({"digit": "-5"}, "digit", 3, "nearest one, #3"),
    ({"digit": "1e9"}, "digit", None, "not a test index"),
    ({"attack": "CW"}, "attack", None, "'CW' is not one of"),
    ({"attack": "PGD"}, "attack", "pgd", None),
    ({"preset": "weak"}, "preset", None, "'weak'"),
    ({"eps": "0.219"}, "eps", 0.22, "showing eps 0.22"),
    ({"eps": "7"}, "eps", 0.5, "showing eps 0.50"),
    ({"eps": "nan"}, "eps", None, "not a number"),
    ({"eps": "zero"}, "eps", None, "not a number"),
    ({"projection": "tsne"}, "projection", None, "'tsne'"),
])
def test_a_bad_value_becomes_the_nearest_valid_one_with_a_notice(query, field, value, notice):
    link = links.read(query, **OFFER)
    assert getattr(link, field) == value
    if notice is None:
        assert link.notices == []
    else:
        [message] = link.notices
        assert notice in message


def test_the_dataset_is_the_models():
    assert links.read({"models": "fashion-softmax", "digit": "5"}, **OFFER).dataset == "fashion-mnist"
    assert links.read({"models": "triplet"}, **OFFER).dataset == "mnist"
    assert links.read({"digit": "5"}, **OFFER).dataset == "mnist"  # no models: MNIST, as the plain address opens
