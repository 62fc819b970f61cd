"""APGD, Square, the latent and the transfer attacks: agreement with the reference AutoAttack (pyautoattack, a
faithful port of the original code; a test dependency only) and the bounds every attack must keep."""

import pytest
import torch
from pyautoattack.autopgd_base import APGDAttack, APGDAttack_targeted
from pyautoattack.square import SquareAttack

from explorer import attacks, data, models
from explorer.attacks import apgd, latent, square
from explorer.attacks.losses import per_digit_loss
from explorer.evaluation import ensemble, lens

EPS = 0.3
CHEAP = {"apgd-ce": {"steps": 10}, "apgd-dlr": {"steps": 10}, "apgd-t": {"steps": 10, "targets": 2},
         "apgd-odi": {"steps": 10, "restarts": 2},
         "latent": {"steps": 10}, "transfer": {"steps": 10}, "square": {"steps": 50}}


@pytest.fixture(scope="module")
def robust_digits(mnist_test):
    """The first 64 test digits and the one shipped model that resists attacks: agreement means something there."""
    return models.load("triplet-pgd"), data.to_tensor(mnist_test[0][:64]), torch.from_numpy(mnist_test[1][:64])


@pytest.mark.parametrize("loss", ["ce", "dlr-targeted"])
def test_apgd_from_the_same_start_reaches_the_reference_verdicts(robust_digits, loss):
    model, images, labels = robust_digits
    eps = torch.full((len(images), 1, 1, 1), EPS)
    start = apgd.random_start(images, eps, torch.Generator().manual_seed(0))
    targets = None
    if loss == "ce":
        reference = APGDAttack(model, n_iter=100, eps=EPS, loss="ce", seed=0, device="cpu")
    else:
        reference = APGDAttack_targeted(model, n_iter=100, eps=EPS, seed=0, device="cpu")
        with torch.no_grad():
            targets = model(images).sort(1)[1][:, -2]  # the clean logits' runner-up, as APGD-T's first target
        reference.y_target = targets
    reference.init_hyperparam(images)
    _, reference_robust, reference_loss, _ = reference.attack_single_run(images, labels, x_init=start)
    ours = apgd.apgd(apgd.logits_objective(model, labels, loss, targets), images, labels, eps, steps=100,
                     generator=torch.Generator(), early_stop=False, start=start)
    assert torch.equal(~ours["fooled"], reference_robust.bool())
    assert 0.2 < float(reference_robust.float().mean()) < 0.9  # digits on both sides: the comparison has teeth
    if loss == "ce":  # the targeted loss's first checkpoint compares against a zero the reference never filled
        torch.testing.assert_close(ours["best_loss"], reference_loss, atol=1e-5, rtol=0)


def test_apgd_checks_its_step_size_where_the_reference_does():
    reference = APGDAttack(torch.nn.Identity(), n_iter=100, eps=EPS, device="cpu")
    reference.init_hyperparam(torch.zeros(1, 1, 28, 28))
    expected, gap = [], reference.n_iter_2
    while (sum(expected[-1:]) + gap) <= 100:
        expected.append(sum(expected[-1:]) + gap)
        gap = max(gap - reference.size_decr, reference.n_iter_min)
    assert apgd.checkpoints(100) == expected == [22, 41, 57, 70, 80, 87, 93, 99]


def test_dlr_losses_equal_the_reference():
    logits, labels, targets = torch.randn(50, 10) * 5, torch.randint(0, 10, (50,)), torch.randint(0, 10, (50,))
    reference = APGDAttack_targeted(torch.nn.Identity(), eps=EPS, device="cpu")
    reference.y_target = targets
    torch.testing.assert_close(per_digit_loss(logits, labels, "dlr"), reference.dlr_loss(logits, labels))
    torch.testing.assert_close(per_digit_loss(logits, labels, "dlr-targeted", targets),
                               reference.dlr_loss_targeted(logits, labels))


def test_square_shrinks_its_windows_on_the_reference_schedule():
    reference = SquareAttack(torch.nn.Identity(), p_init=0.8, n_queries=5000, resc_schedule=False, device="cpu")
    assert all(square.window_share(0.8, query) == reference.p_selection(query) for query in range(10_000))


def test_square_is_as_strong_as_the_reference(softmax_model, digits):
    # A random search: a seed moves either result by a few digits, so both are averaged over four seeds.
    images, labels = digits
    ours, theirs = [], []
    for seed in range(4):
        reference = SquareAttack(softmax_model, p_init=0.8, n_queries=200, eps=EPS, seed=seed, resc_schedule=False,
                                 device="cpu")
        with torch.no_grad():
            found = reference.perturb(images, labels)
            theirs.append(float((softmax_model(found).argmax(1) == labels).float().mean()))
        ours.append(1 - float(attacks.run(softmax_model, images, labels, "square", EPS, steps=200,
                                          seed=seed).fooled.float().mean()))
    assert 0.05 < sum(theirs) / 4 < 0.9  # 200 queries leave digits on both sides
    assert sum(ours) / 4 <= sum(theirs) / 4 + 0.02



def test_square_queries_a_frozen_graph_with_the_models_logits(robust_digits):
    model, images, _ = robust_digits
    forward = square.inference_forward(model, images[:8])
    assert forward is not model  # the fast path is taken for the shipped architecture
    with torch.no_grad():
        assert torch.allclose(forward(images), model(images), atol=1e-4)  # any batch size, not just the example's
    model.train()  # a model in training mode is queried as it is
    try:
        assert square.inference_forward(model, images[:8]) is model
    finally:
        model.eval()

@pytest.mark.parametrize("kind", attacks.STRONGER_KINDS)
def test_every_stronger_attack_stays_in_bounds_and_reports_the_verdict_it_returns(softmax_model, digits, kind):
    images, labels = digits[0][:32], digits[1][:32]
    before = images.clone()
    result = attacks.run(softmax_model, images, labels, kind, torch.tensor([0.1, 0.3]), **CHEAP[kind])
    assert torch.equal(images, before)
    assert result.adversarial.shape == (2, 32, 1, 28, 28) and result.fooled.shape == (2, 32)
    for row, eps in enumerate((0.1, 0.3)):
        adversarial = result.adversarial[row]
        assert float((adversarial - images).abs().max()) <= eps + 1e-6
        assert float(adversarial.min()) >= 0 and float(adversarial.max()) <= 1
        with torch.no_grad():
            assert torch.equal(softmax_model(adversarial).argmax(1) != labels, result.fooled[row])
    assert result.fooled[1].sum() > 0 and result.fooled[1].sum() >= result.fooled[0].sum() - 2


@pytest.mark.parametrize("kind", attacks.STRONGER_KINDS)
def test_pairs_already_fooled_are_not_attacked(softmax_model, digits, kind):
    images, labels = digits[0][:8], digits[1][:8]
    settled = torch.tensor([[True, False] * 4])
    result = attacks.run(softmax_model, images, labels, kind, EPS, already_fooled=settled, **CHEAP[kind])
    assert result.fooled[settled].all()
    assert torch.equal(result.adversarial[0][settled[0]], images[settled[0]])


def test_the_latent_attack_carries_embeddings_into_another_cluster(digits):
    model = models.load("triplet")
    images, labels = digits[0][:64], digits[1][:64]
    centroids = latent.class_centroids(model)
    sample_images, sample_labels, _ = data.load_sample()
    with torch.no_grad():
        sevens = model.embed(data.to_tensor(sample_images[sample_labels == 7]))
    torch.testing.assert_close(centroids[7], sevens.mean(0))
    result = attacks.run(model, images, labels, "latent", EPS)
    with torch.no_grad():
        before = attacks.losses.latent_loss(model.embed(images), labels, centroids)
        after = attacks.losses.latent_loss(model.embed(result.adversarial[0]), labels, centroids)
    assert (before < 0).all()  # every clean digit sits nearer its own centroid than any other
    assert float(result.fooled.float().mean()) > 0.9 and (after > before).all()


def test_transfer_from_an_ensemble_averages_its_members_logits(softmax_model, digits):
    images = digits[0][:16]
    averaged = attacks.transfer.source_model("softmax+triplet", torch.device("cpu"))
    with torch.no_grad():
        torch.testing.assert_close(averaged(images), (softmax_model(images) + models.load("triplet")(images)) / 2)


def test_a_stronger_attack_refuses_what_it_cannot_do(softmax_model, digits):
    images, labels = digits[0][:4], digits[1][:4]
    with pytest.raises(ValueError, match="apgd-t cannot use the loss 'ce'"):
        attacks.run(softmax_model, images, labels, "apgd-t", EPS, loss="ce")
    with pytest.raises(ValueError, match="targets must be between 1 and 9"):
        attacks.run(softmax_model, images, labels, "apgd-t", EPS, targets=10)
    with pytest.raises(ValueError, match="iterates are recorded"):
        attacks.run(softmax_model, images, labels, "square", EPS, return_iterates=True)


def test_the_lens_measures_the_loss_around_the_digit_and_along_each_attack(softmax_model, digits):
    image, label = digits[0][0], int(digits[1][0])
    surface = lens.loss_surface(softmax_model, image, label, EPS, points=5)
    with torch.no_grad():
        clean = per_digit_loss(softmax_model(image[None]), torch.tensor([label]), "ce")
    assert surface.loss.shape == surface.prediction.shape == (5, 5)
    assert surface.loss[2, 2] == pytest.approx(float(clean), rel=1e-5) and surface.prediction[2, 2] == label
    assert surface.loss[2, 4] > surface.loss[2, 2]  # a step along the gradient's sign raises the loss
    margins = lens.margin_curve(softmax_model, image, label, "apgd-ce", EPS, steps=20)
    assert margins.shape == (21,) and margins.max() > 0 > margins[0] - 1e-6  # fooled along the way


@pytest.mark.parametrize("name", ["softmax", "triplet-fgsm"])
def test_a_slice_of_the_committed_converged_evaluation_re_runs_to_the_same_verdicts(name, mnist_test):
    """Beside the tests that read results/converged.json, one that recomputes a piece of it: the first 60 digits'
    clean verdicts exactly, and the first component breaking the digits the file says it broke."""
    from tqdm import tqdm

    from explorer import models
    from explorer.evaluation import results
    from explorer.models import forward

    committed = results.committed("converged")["models"][name]["broken_by"][:60]
    images, labels = data.to_tensor(mnist_test[0][:60]), torch.from_numpy(mnist_test[1][:60])
    model = models.load(name)
    clean_wrong = forward.misclassified(model, images, labels)
    assert clean_wrong.tolist() == [code == ensemble.CLEAN for code in committed]
    # Another batch size gives other random starts, so a digit another component broke may fall here too.
    found, _ = ensemble.attack_in_batches(model, images, labels, ensemble.component("apgd-ce"), 0.3, clean_wrong,
                                          batch_size=60, store=None, bar=tqdm(disable=True))
    newly = found["fooled"]
    assert all(newly[i] for i, code in enumerate(committed) if code == "1")
