import numpy as np
import pytest
import torch

from explorer import attacks, data, models
from explorer.plots import figures, gallery


@pytest.fixture(scope="module")
def sample():
    return data.load_sample()


def one_of_each_class(sample, model: models.ConvNet, eps: float) -> tuple[gallery.Gallery, torch.Tensor]:
    images, labels, indices = sample
    chosen = gallery.pick_digits(labels)
    return (gallery.attack_digits(model, images[chosen], labels[chosen], indices[chosen], eps),
            data.to_tensor(images[chosen]))


@pytest.fixture(scope="module")
def pgd_trained(sample) -> gallery.Gallery:
    # at eps 0.3 the PGD-trained model keeps all ten of these digits; at 0.4 the attacks fool different subsets
    return one_of_each_class(sample, models.load("triplet-pgd"), 0.4)[0]


def test_digits_are_one_of_each_class_or_a_seeded_random_pick(sample):
    labels = sample[1]
    assert labels[gallery.pick_digits(labels)].tolist() == list(range(10))
    assert labels[gallery.pick_digits(labels, 20)].tolist() == list(range(10)) * 2
    drawn = gallery.pick_digits(labels, 12, seed=3)
    assert len(set(drawn.tolist())) == 12
    assert np.array_equal(drawn, gallery.pick_digits(labels, 12, seed=3))
    assert not np.array_equal(drawn, gallery.pick_digits(labels, 12, seed=4))
    with pytest.raises(ValueError, match=r"count must be in 1\.\.2000"):
        gallery.pick_digits(labels, 0)


def test_captions_are_the_models_predictions_on_the_adversarial_digits(sample):
    model = models.load("triplet")
    result, clean = one_of_each_class(sample, model, 0.3)
    labels = result.labels.tolist()
    for kind, (row_label, tiles) in zip(attacks.KINDS, gallery.rows(result), strict=True):
        assert row_label == kind.upper()
        adversarial = torch.from_numpy(result.adversarial[kind])[:, None]
        assert float((adversarial - clean).abs().max()) <= 0.3 + 1e-6
        with torch.no_grad():
            predicted = model(adversarial).argmax(1).tolist()
        assert [tile.caption for tile in tiles] == [f"y={y} -> {p}" for y, p in zip(labels, predicted, strict=True)]
        assert [tile.marked for tile in tiles] == [p != y for y, p in zip(labels, predicted, strict=True)]
    # the guide's classroom script relies on this: the triplet model gives up every one of these digits at eps 0.3
    assert all(result.fooled(kind).all() for kind in ("bim", "mim", "pgd"))


def test_at_eps_zero_no_correctly_classified_digit_is_fooled(sample):
    model = models.load("softmax")
    result, clean = one_of_each_class(sample, model, 0.0)
    with torch.no_grad():
        clean_predictions = model(clean).argmax(1).numpy()
    correct = clean_predictions == result.labels
    for kind in attacks.KINDS:
        assert np.array_equal(result.adversarial[kind], clean[:, 0].numpy())
        assert np.array_equal(result.predictions[kind], clean_predictions)
        assert not result.fooled(kind)[correct].any()


def test_the_grid_shows_each_adversarial_digit_in_its_row_and_column(pgd_trained):
    result = pgd_trained
    image = np.asarray(gallery.render(result).convert("L"))
    size = 28 * gallery.SCALE
    for row, kind in enumerate(attacks.KINDS):
        for column in range(len(result.labels)):
            x = figures.ROW_LABEL_WIDTH + column * (size + figures.GAP)
            y = figures.CAPTION_HEIGHT + row * (size + figures.CAPTION_HEIGHT)
            expected = np.asarray(figures.digit_image(result.adversarial[kind][column], gallery.SCALE))
            # inside the 2-pixel red frame that marks a fooled digit
            assert np.array_equal(image[y + 2 : y + size - 2, x + 2 : x + size - 2], expected[2:-2, 2:-2])


def test_the_pgd_trained_model_keeps_every_one_of_these_digits_at_the_papers_eps(sample):
    # the guide's classroom script relies on this, and on some of them falling at 0.4 (the fixture above)
    result = one_of_each_class(sample, models.load("triplet-pgd"), 0.3)[0]
    assert gallery.shown_digits(result, fooled_only=True) == []


def test_only_fooled_drops_unfooled_digits_and_keeps_columns_aligned(pgd_trained):
    result = pgd_trained
    shown = gallery.shown_digits(result, fooled_only=True)
    assert 0 < len(shown) < 10
    for kind, (_, tiles) in zip(attacks.KINDS, gallery.rows(result, fooled_only=True), strict=True):
        assert len(tiles) == len(shown)
        for position, tile in zip(shown, tiles, strict=True):
            assert (tile is not None) == bool(result.fooled(kind)[position])
            assert tile is None or tile.marked
    assert gallery.render(result, fooled_only=True).width < gallery.render(result).width
