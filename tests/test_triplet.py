"""The paper's method itself: the miners, the triplet loss, and the adversarial triplet training step, on
hand-made embeddings whose answers are known."""

import pytest
import torch
import torch.nn.functional as F

from explorer import attacks, models, training
from explorer.training.losses import triplet_margin_loss
from explorer.training.miners import batch_all, batch_hard

# Five points on a line: class 0 at 0 and 1, class 1 at 3, 4 and 10.
POINTS = torch.tensor([[0.0], [1.0], [3.0], [4.0], [10.0]])
LABELS = torch.tensor([0, 0, 1, 1, 1])


def test_batch_hard_takes_each_anchors_farthest_positive_and_nearest_negative():
    anchors, positives, negatives = batch_hard(POINTS, LABELS)
    assert anchors.tolist() == [0, 1, 2, 3, 4]
    assert positives.tolist() == [1, 0, 4, 4, 2]  # e.g. for 3 the farthest 1 is 10; for 10 it is 3
    assert negatives.tolist() == [2, 2, 1, 1, 1]  # for every 1 the nearest 0 is the point at 1


def test_an_anchor_without_a_positive_or_a_negative_gives_no_triplet():
    anchors, _, _ = batch_hard(POINTS[:3], LABELS[:3])  # the point at 3 is alone in its class
    assert anchors.tolist() == [0, 1]
    assert batch_hard(POINTS[:2], LABELS[:2])[0].numel() == 0  # one class only: nothing to push apart


def test_batch_all_lists_every_valid_triplet_once():
    triplets = set(zip(*(part.tolist() for part in batch_all(POINTS, LABELS)), strict=True))
    # class 0: 2 anchors x 1 positive x 3 negatives; class 1: 3 anchors x 2 positives x 2 negatives
    assert len(triplets) == 6 + 12
    assert all(LABELS[a] == LABELS[p] != LABELS[n] and a != p for a, p, n in triplets)


def test_the_triplet_loss_averages_only_the_triplets_that_still_violate_the_margin():
    triplets = (torch.tensor([0, 2, 4]), torch.tensor([1, 3, 3]), torch.tensor([2, 1, 1]))
    # |a-p| - |a-n|: (1 - 3) = -2, (1 - 2) = -1, (6 - 9) = -3; with margin 1 every triplet is satisfied
    assert triplet_margin_loss(POINTS, triplets, margin=1.0).item() == 0.0
    # margin 3.5: all three violate, by 1.5, 2.5 and 0.5
    assert triplet_margin_loss(POINTS, triplets, margin=3.5).item() == pytest.approx((1.5 + 2.5 + 0.5) / 3)
    # margin 2: only the second violates (by 1); the two satisfied ones do not dilute it
    assert triplet_margin_loss(POINTS, triplets, margin=2.0).item() == pytest.approx(1.0)


def test_the_triplet_loss_agrees_with_pytorchs_over_the_violating_triplets():
    torch.manual_seed(0)
    embeddings, labels = torch.randn(32, 64), torch.randint(0, 4, (32,))
    anchors, positives, negatives = batch_all(embeddings, labels)
    reference = F.triplet_margin_loss(embeddings[anchors], embeddings[positives], embeddings[negatives], margin=1.0,
                                      reduction="none", eps=0.0)
    assert triplet_margin_loss(embeddings, (anchors, positives, negatives), 1.0).item() == pytest.approx(
        reference[reference > 0].mean().item(), rel=1e-5)


def test_a_satisfied_batch_still_gives_a_zero_gradient_not_none_or_nan():
    embeddings = POINTS.clone().requires_grad_(True)
    triplet_margin_loss(embeddings, batch_hard(POINTS, LABELS), margin=0.0).backward()
    assert embeddings.grad is not None and not embeddings.grad.isnan().any()


def test_a_triplet_pgd_step_trains_the_network_by_the_triplet_loss_and_the_head_by_cross_entropy_alone():
    torch.manual_seed(0)
    model = models.ConvNet()
    recipe = training.RECIPES["triplet-pgd"]
    images, labels = torch.rand(8, 1, 28, 28), torch.arange(8) % 4
    loss, logits = training.batch_loss(model, recipe, images, labels, seed=5, eps=0.3)
    assert logits.shape == (16, 10)  # every digit joined by its PGD twin
    twins = attacks.attack(model, images, labels, "pgd", 0.3, seed=5)
    both, twice = torch.cat([images, twins]), torch.cat([labels, labels])
    embeddings = model.embed(both)
    triplet = triplet_margin_loss(embeddings, batch_all(embeddings, twice), recipe.margin)
    torch.testing.assert_close(loss, triplet + F.cross_entropy(model.head(embeddings), twice))

    loss.backward()
    below_head = {name: p.grad.clone() for name, p in model.named_parameters() if not name.startswith("classifier")}
    head = {name: p.grad.clone() for name, p in model.named_parameters() if name.startswith("classifier")}
    model.zero_grad()
    triplet_margin_loss(model.embed(both), batch_all(model.embed(both), twice), recipe.margin).backward()
    for name, gradient in below_head.items():  # stop-gradient: the head's cross-entropy never reaches the network
        torch.testing.assert_close(gradient, dict(model.named_parameters())[name].grad)
    model.zero_grad()
    F.cross_entropy(model.head(model.embed(both).detach()), twice).backward()
    for name, gradient in head.items():
        torch.testing.assert_close(gradient, dict(model.named_parameters())[name].grad)


def test_the_pgd_budget_grows_over_the_warm_up_epochs_then_stays():
    recipe = training.RECIPES["triplet-pgd"]
    assert [training.adversary_eps(recipe, epoch) for epoch in (0, 1.5, 3, 10)] == pytest.approx([0, 0.15, 0.3, 0.3])
    assert training.adversary_eps(training.RECIPES["triplet-fgsm"], 0) == 0.3  # no warm-up: the paper eps at once
