import numpy as np
import pytest
import torch
import torchattacks
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from explorer import attacks, models
from explorer.evaluation import evaluate

EPS = 0.3


def torchattacks_reference(model, kind):
    """torchattacks 3.5.1 with exactly our paper parameters (step sizes as the same float32 values)."""
    return {
        "fgsm": (torchattacks.FGSM(model, eps=EPS), {}),
        "bim": (torchattacks.BIM(model, eps=EPS, alpha=0.03, steps=10), {"step_size": 0.03}),
        "mim": (torchattacks.MIFGSM(model, eps=EPS, alpha=0.03, steps=10, decay=1.0), {"step_size": 0.03}),
        "pgd": (torchattacks.PGD(model, eps=EPS, alpha=0.01, steps=40, random_start=False),
                {"random_start": False}),
    }[kind]


@pytest.mark.parametrize("kind", attacks.KINDS)
def test_agrees_with_torchattacks(softmax_model, digits, kind):
    # 128 digits: torchattacks averages the loss over the batch, we sum it (so each digit's gradient is independent
    # of its batch); the two gradients differ by the factor 1/N, which is exact in float32 only for N a power of 2.
    images, labels = digits
    reference, params = torchattacks_reference(softmax_model, kind)
    ours = attacks.attack(softmax_model, images, labels, kind, EPS, **params)
    torch.testing.assert_close(ours, reference(images, labels), atol=1e-6, rtol=0)
    assert (softmax_model(ours).argmax(1) != labels).sum() > 10  # the attack does something


def test_bim_equals_torchattacks_pgd_without_random_start_on_more_digits(softmax_model, mnist_test):
    # torchattacks' BIM projects with a min/max formula 1 ulp off its PGD's; over 512 digits that flips a few
    # near-zero gradient signs, so the larger comparison is against the projection we share.
    from explorer import data

    images, labels = data.to_tensor(mnist_test[0][:512]), torch.from_numpy(mnist_test[1][:512])
    reference = torchattacks.PGD(softmax_model, eps=EPS, alpha=0.03, steps=10, random_start=False)
    ours = attacks.attack(softmax_model, images, labels, "bim", EPS, step_size=0.03)
    torch.testing.assert_close(ours, reference(images, labels), atol=1e-6, rtol=0)


@pytest.mark.parametrize("kind", ["fgsm", "bim", "pgd"])
def test_agrees_with_the_adversarial_robustness_toolbox(softmax_model, digits, kind):
    # ART's MIM adds a tolerance to the L1 norm of the gradient, a different definition, so it is not compared.
    from art.attacks.evasion import BasicIterativeMethod, FastGradientMethod, ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    images, labels = digits
    classifier = PyTorchClassifier(model=softmax_model, loss=torch.nn.CrossEntropyLoss(), input_shape=(1, 28, 28),
                                   nb_classes=10, clip_values=(0.0, 1.0))
    reference, params = {
        "fgsm": (FastGradientMethod(classifier, norm=np.inf, eps=EPS, batch_size=128), {}),
        "bim": (BasicIterativeMethod(classifier, eps=EPS, eps_step=0.03, max_iter=10, batch_size=128,
                                     verbose=False), {"step_size": 0.03}),
        "pgd": (ProjectedGradientDescent(classifier, norm=np.inf, eps=EPS, eps_step=0.01, max_iter=40,
                                         num_random_init=0, batch_size=128, verbose=False),
                {"random_start": False}),
    }[kind]
    expected = torch.from_numpy(reference.generate(images.numpy(), y=labels.numpy()))
    ours = attacks.attack(softmax_model, images, labels, kind, EPS, **params)
    torch.testing.assert_close(ours, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("kind", attacks.KINDS)
@pytest.mark.parametrize("preset", ["paper", "strong"])
def test_perturbations_stay_within_eps_and_pixels_within_range(softmax_model, digits, kind, preset):
    images, labels = digits
    before = images.clone()
    eps = torch.tensor([0.05, 0.2, EPS])
    steps = {"steps": 5} if preset == "strong" and kind != "fgsm" else {}  # the bounds do not depend on steps
    adversarial = attacks.attack_grid(softmax_model, images[:32], labels[:32], kind, eps, preset=preset, **steps)
    assert adversarial.shape == (3, 32, 1, 28, 28)
    delta = (adversarial - images[:32]).abs().amax(dim=(1, 2, 3, 4))
    assert bool((delta <= eps + 1e-6).all())  # float32: x + delta - x can round one ulp past eps
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    assert torch.equal(images, before)  # the input is never modified


@pytest.mark.parametrize("kind", attacks.KINDS)
def test_eps_zero_changes_nothing(softmax_model, digits, kind):
    images, labels = digits
    assert torch.equal(attacks.attack(softmax_model, images[:16], labels[:16], kind, 0.0), images[:16])


@pytest.mark.parametrize("kind", attacks.KINDS)
def test_a_slice_of_a_batch_equals_the_whole_batch(softmax_model, digits, kind):
    images, labels = digits
    whole = attacks.attack(softmax_model, images[:40], labels[:40], kind, EPS, random_start=False)
    part = attacks.attack(softmax_model, images[10:17], labels[10:17], kind, EPS, random_start=False)
    torch.testing.assert_close(part, whole[10:17], atol=1e-6, rtol=0)


def test_several_eps_in_one_call_equal_one_call_each(softmax_model, digits):
    images, labels = digits
    together = attacks.attack_grid(softmax_model, images[:20], labels[:20], "bim", [0.1, 0.25])
    for i, eps in enumerate([0.1, 0.25]):
        alone = attacks.attack(softmax_model, images[:20], labels[:20], "bim", eps)
        torch.testing.assert_close(together[i], alone, atol=1e-6, rtol=0)


def test_random_start_is_seeded(softmax_model, digits):
    images, labels = digits
    runs = [attacks.attack(softmax_model, images[:16], labels[:16], "pgd", EPS, steps=3, seed=s) for s in (1, 1, 2)]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_iterates_run_from_the_start_to_the_result(softmax_model, digits):
    images, labels = digits
    result = attacks.run(softmax_model, images[:8], labels[:8], "bim", [0.1, 0.3], return_iterates=True)
    assert result.iterates.shape == (11, 2, 8, 1, 28, 28)
    assert torch.equal(result.iterates[0, 0], images[:8])
    assert torch.equal(result.iterates[-1], result.adversarial)


def test_iterative_attacks_beat_fgsm_and_the_strong_preset_beats_the_paper(softmax_model, digits):
    images, labels = digits

    def accuracy(kind, preset):
        return float(1 - attacks.run(softmax_model, images, labels, kind, EPS, preset=preset).fooled.float().mean())

    assert accuracy("pgd", "paper") < accuracy("fgsm", "paper")
    assert accuracy("pgd", "strong") <= accuracy("pgd", "paper")
    assert accuracy("pgd", "strong") < 0.02  # a plain CNN has no L-inf robustness at eps 0.3


def test_fooled_and_early_stop_report_real_misclassifications(softmax_model, digits):
    images, labels = digits
    result = attacks.run(softmax_model, images, labels, "pgd", EPS, preset="strong")
    with torch.no_grad():
        predicted = softmax_model(result.adversarial[0]).argmax(1)
    assert torch.equal(result.fooled[0], predicted != labels)


def test_an_fgsm_screen_adds_its_fooled_digits_and_changes_nothing_else(softmax_model, digits):
    # Without random start the main attack treats each digit alone, so screening may only add the pairs FGSM fooled.
    images, labels = digits
    eps = [0.1, 0.3]
    options = {"batch_size": 64, "progress": False, "random_start": False, "loss": "margin"}
    plain = evaluate.outcomes(softmax_model, images, labels, "pgd", eps, **options).fooled
    screened = evaluate.outcomes(softmax_model, images, labels, "pgd", eps, screen="fgsm", **options).fooled
    fgsm = evaluate.outcomes(softmax_model, images, labels, "fgsm", eps, loss="margin", progress=False).fooled
    assert torch.equal(screened, plain | fgsm)


def test_pairs_already_fooled_are_not_attacked(softmax_model, digits):
    images, labels = digits
    skip = torch.zeros(2, len(images), dtype=torch.bool)
    skip[1, :50] = True
    result = attacks.run(softmax_model, images, labels, "bim", [0.1, 0.3], already_fooled=skip)
    assert result.fooled[1, :50].all()
    assert torch.equal(result.adversarial[1, :50], images[:50])
    assert not torch.equal(result.adversarial[0, :50], images[:50])


def test_a_zero_gradient_is_counted_not_turned_into_nan(digits):
    images, labels = digits
    flat = models.ConvNet().eval()
    torch.nn.init.zeros_(flat.classifier.weight)  # constant logits: the input gradient is exactly zero
    result = attacks.run(flat, images[:8], labels[:8], "mim", EPS)
    assert result.zero_gradient_count == 8
    assert torch.equal(result.adversarial[0], images[:8])  # no NaN, and a digit with no gradient stays put


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"kind": "cw"}, "unknown attack"), ({"eps": 1.5}, r"eps must lie in \[0, 1\]"), ({"steps": 0}, "steps must"),
    ({"loss": "hinge"}, "unknown loss"), ({"preset": "weak"}, "unknown preset"), ({"restarts": 0}, "restarts"),
    ({"alpha": 0.1}, "unknown attack parameter"),
])
def test_bad_parameters_get_a_clear_message(softmax_model, digits, kwargs, message):
    images, labels = digits
    arguments = {"kind": "pgd", "eps": EPS, **kwargs}
    with pytest.raises(ValueError, match=message):
        attacks.attack(softmax_model, images[:2], labels[:2], arguments.pop("kind"), arguments.pop("eps"),
                       **arguments)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pixels=arrays(np.float32, st.tuples(st.integers(1, 3), st.just(1), st.just(28), st.just(28)),
                  elements=st.floats(0, 1, width=32)),
    eps=st.lists(st.floats(0, 1, width=32), min_size=1, max_size=3),
    kind=st.sampled_from(attacks.KINDS),
    steps=st.integers(1, 3),
    random_start=st.booleans(),
    loss=st.sampled_from(["ce", "margin"]),
    restarts=st.integers(1, 2),
)
def test_any_digit_and_budget_give_valid_pixels_within_eps(softmax_model, pixels, eps, kind, steps, random_start,
                                                           loss, restarts):
    images = torch.from_numpy(pixels)
    before = images.clone()
    labels = torch.arange(len(images)) % 10
    adversarial = attacks.attack_grid(softmax_model, images, labels, kind, eps, steps=steps,
                                      random_start=random_start, loss=loss, restarts=restarts)
    assert adversarial.shape == (len(eps), *images.shape)
    assert torch.isfinite(adversarial).all()
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    budget = torch.tensor(eps).view(-1, 1, 1, 1, 1)
    assert ((adversarial - images).abs() <= budget + 1e-6).all()
    assert torch.equal(images, before)  # the caller's digits are never modified


def test_one_eps_gives_one_batch_and_a_grid_needs_attack_grid(softmax_model, digits):
    images, labels = digits
    assert attacks.attack(softmax_model, images[:4], labels[:4], "fgsm", 0.1).shape == (4, 1, 28, 28)
    assert attacks.attack_grid(softmax_model, images[:4], labels[:4], "fgsm", [0.1]).shape == (1, 4, 1, 28, 28)
    with pytest.raises(TypeError, match="attack_grid"):
        attacks.attack(softmax_model, images[:4], labels[:4], "fgsm", [0.1, 0.2])
    with pytest.raises(TypeError, match="1-D"):
        attacks.attack_grid(softmax_model, images[:4], labels[:4], "fgsm", 0.1)
