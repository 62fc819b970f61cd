"""The converged evaluation on small slices: the worst case over every stage, escalation that goes on while a
doubled round still breaks digits and stops once one breaks nothing more, a budget that ends it honestly, and Square
deciding by evidence whether the gradients can be trusted."""

import itertools
import json

import pytest
import torch
from torch import nn

from explorer import attacks, models
from explorer.attacks import odi
from explorer.evaluation import ensemble

CHEAP = {"first_round": (2, 1), "square_queries": 50, "batch_size": 16, "progress": False}


@pytest.fixture(scope="module")
def robust_digits(mnist_test):
    from explorer import data

    return models.load("triplet-pgd"), data.to_tensor(mnist_test[0][:32]), torch.from_numpy(mnist_test[1][:32])


@pytest.fixture(scope="module")
def escalated(robust_digits):
    """The rounds alone on triplet-pgd's 32 digits, up to a budget of 400 gradients a digit."""
    model, images, labels = robust_digits
    return ensemble.evaluate(model, images, labels, components=(), budget=400, **CHEAP)


def test_every_digit_counts_as_broken_by_the_first_stage_that_broke_it(robust_digits):
    model, images, labels = robust_digits
    result = ensemble.evaluate(model, images, labels, components=("apgd-ce", "latent"), **CHEAP)
    codes = result["broken_by"]
    letters = [r["code"] for r in result["rounds"]]
    assert len(codes) == 32 and set(codes) <= {".", "c", "1", "2", "S", *letters}
    assert result["robust_accuracy"] == pytest.approx(codes.count(".") / 32)
    assert result["robust_accuracy"] <= result["ensemble_accuracy"]
    alone = attacks.run(model, images, labels, "apgd-ce", 0.3, seed=0).fooled[0]
    assert all(code != "." for code, fooled in zip(codes, alone.tolist(), strict=True) if fooled)
    assert [c["broke"] for c in result["components"]] == [codes.count("1"), codes.count("2")]
    assert [r["broke"] for r in result["rounds"]] == [codes.count(code) for code in letters]
    assert result["square"]["broke"] == codes.count("S")
    spent = torch.tensor(result["escalation_budget"])
    assert int(spent.sum()) == sum(r["gradients"] for r in result["rounds"])
    assert bool((spent[[c in "c12" for c in codes]] == 0).all())  # broken before the rounds: no escalation budget
    assert ensemble.share_of_broken(result)["apgd-ce"] == codes.count("1")


def test_a_doubled_round_that_still_breaks_digits_escalates_again(escalated):
    """Rounds of 2, 4, 8, ... steps from the start: each doubling breaks more of triplet-pgd's digits, so the
    evaluation goes on until a doubling breaks none (0.5% of 32 digits rounds to none) or the budget ends it."""
    result = escalated
    rounds = result["rounds"]
    assert len(rounds) >= 3 and rounds[1]["broke"] > 0
    for this, following in itertools.pairwise(rounds[1:]):  # a round went on because it found more, or to confirm
        assert this["broke"] > 0 or (following["confirms"] and following["sat_out"] == 0)
    assert [r["steps"] * r["restarts"] for r in rounds] == [2 * 2**i for i in range(len(rounds))]
    spent = max(result["escalation_budget"])
    assert spent <= 400
    if result["converged"]:  # two quiet doublings in a row, the second on every standing digit
        assert rounds[-2]["broke"] == rounds[-1]["broke"] == 0 and rounds[-1]["confirms"]
        assert result["convergence"]["says"].startswith("converged")
    else:  # the budget ran out first: the next round would have passed it
        following = ensemble.round_settings(len(rounds) + 1, (2, 1))
        assert spent + ensemble.gradients_per_digit("apgd-odi", **following) > 400
        last = rounds[-1]["broke"]
        assert result["convergence"]["says"] == (
            f"not converged after budget 400: the last round still broke {last}" if last else
            "not converged after budget 400: the last round broke 0, but the round that would confirm it passes the "
            "budget")


def test_a_doubled_round_that_breaks_nothing_more_ends_the_evaluation(robust_digits):
    model, images, labels = robust_digits
    result = ensemble.evaluate(model, images, labels, 0.02, components=(), **CHEAP)
    assert [r["broke"] for r in result["rounds"]] == [0, 0, 0] and result["converged"]
    assert [r["confirms"] for r in result["rounds"]] == [False, False, True] and result["rounds"][2]["sat_out"] == 0
    assert result["convergence"]["says"] == "converged: round 3 broke 0 on every standing digit, after round 2 broke 0"
    assert result["robust_accuracy"] == result["clean_accuracy"]


def test_a_budget_too_small_for_a_confirmed_doubling_is_not_converged(robust_digits):
    model, images, labels = robust_digits
    first = ensemble.gradients_per_digit("apgd-odi", **ensemble.round_settings(1, (2, 1)))
    result = ensemble.evaluate(model, images, labels, components=(), budget=first, **CHEAP)
    assert len(result["rounds"]) == 1 and not result["converged"]
    assert result["convergence"]["says"].startswith(f"not converged after budget {first}")
    two = first + ensemble.gradients_per_digit("apgd-odi", **ensemble.round_settings(2, (2, 1)))
    quiet = ensemble.evaluate(model, images, labels, 0.02, components=(), budget=two, **CHEAP)
    assert [r["broke"] for r in quiet["rounds"]] == [0, 0]
    assert not quiet["converged"]  # one quiet doubling is not enough
    assert quiet["convergence"]["says"] == (f"not converged after budget {two}: the last round broke 0, but the round "
                                            "that would confirm it passes the budget")


def test_the_digits_left_standing_are_tried_just_past_the_budget_without_changing_a_verdict(escalated, robust_digits):
    """triplet-pgd's survivors sit on the edge of eps = 0.3: one APGD-CE run at 0.32 breaks some of what every round
    left, and none of it counts at 0.3."""
    result = escalated
    beyond = result["beyond"]
    standing = result["broken_by"].count(".")
    assert beyond["eps"] == [0.305, 0.31, 0.32] and beyond["standing"] == standing > 0
    assert all(0 <= broke <= standing for broke in beyond["broke"]) and beyond["broke"][-1] > 0
    assert result["robust_accuracy"] == standing / 32
    model, images, labels = robust_digits
    left = torch.tensor([code == "." for code in result["broken_by"]])
    alone = attacks.run(model, images[left], labels[left], "apgd-ce", 0.32, seed=0).fooled[0]
    assert alone.any()  # the same attack, on the same digits, in one batch: it breaks some there too


def test_a_rounds_restarts_go_by_successive_halving_to_the_digits_nearest_the_boundary(robust_digits):
    """Eight restarts: one for every digit, one more for the nearest half of the survivors, two for the nearest
    quarter, four for the nearest eighth; a digit that drew more stood nearer the boundary than one that drew less."""
    from explorer.evaluation.runners import escalation_batch

    model, images, labels = robust_digits
    out = escalation_batch(model, images=images, labels=labels, eps=0.1, seed=0, steps=3, restarts=8,
                           already_fooled=torch.zeros(1, 32, dtype=torch.bool))
    restarts = out["budget"][0] // (3 + odi.DIVERSIFYING_STEPS + 1)
    assert set(restarts.tolist()) <= {1, 2, 4, 8} and (restarts == 1).any() and (restarts == 8).any()
    for fewer, more in itertools.pairwise((1, 2, 4, 8)):
        assert (restarts >= more).sum() <= -(-int((restarts >= fewer).sum()) // 2)
    standing = ~out["fooled"][0]
    margin = out["margin"][0]
    assert margin[standing & (restarts > 1)].max() <= margin[standing & (restarts == 1)].min()
    assert torch.isinf(margin[~standing]).all() and (margin[standing] > 0).all()


def test_from_round_two_the_digits_found_furthest_from_the_boundary_sit_out(escalated):
    """The far half by smallest margin so far sits a round out: a round's gradients go to the digits it attacked, at
    least one restart each, none to those sitting out."""
    margin = torch.tensor([float("inf"), 0.1, 0.5, 2.0, 3.0, 0.2])
    standing = torch.tensor([False, True, True, True, True, False])
    assert ensemble.far_half(margin, standing).tolist() == [False, False, False, True, True, False]
    assert not ensemble.far_half(margin, torch.zeros(6, dtype=torch.bool)).any()

    rounds = escalated["rounds"]
    assert len(rounds) >= 3 and rounds[0]["sat_out"] == 0
    for before, this in itertools.pairwise(rounds):
        assert this["digits"] + this["sat_out"] == before["standing_after"]
        if this["confirms"]:
            assert this["sat_out"] == 0
        else:
            assert 0 < this["sat_out"] <= before["standing_after"] // 2
    for this in rounds:
        one_restart = this["steps"] + odi.DIVERSIFYING_STEPS + 1
        assert this["digits"] * one_restart <= this["gradients"] <= this["digits"] * this["gradients_per_digit"]


class Quantised(nn.Module):
    """softmax behind a rounding of its input: a zero gradient everywhere, the textbook masked model."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = models.load("softmax")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.inner(torch.round(images * 4) / 4)


def test_square_runs_on_every_standing_digit_when_its_sample_breaks_what_gradients_missed(digits):
    model, images, labels = Quantised().eval(), digits[0][:64], digits[1][:64]
    result = ensemble.evaluate(model, images, labels, components=("apgd-ce",), budget=50, **CHEAP)
    square = result["square"]
    assert square["sampled"] == 20 and square["sample_broke"] > 0 and square["masking_suspected"]
    before = square["ran_on"]
    assert before == 64 - sum(c not in ".S" for c in result["broken_by"])
    assert square["broke"] == result["broken_by"].count("S") > square["sample_broke"]


def test_square_tries_only_a_sample_where_gradients_are_honest(robust_digits):
    model, images, labels = robust_digits
    result = ensemble.evaluate(model, images, labels, components=("apgd-ce",), **CHEAP)
    square = result["square"]
    standing = result["broken_by"].count(".") + result["broken_by"].count("S")
    assert square["ran_on"] == square["sampled"] == min(20, standing) and not square["masking_suspected"]
    everywhere = ensemble.evaluate(model, images, labels, components=("apgd-ce",), square="all", **CHEAP)
    assert everywhere["square"]["ran_on"] == standing
    with pytest.raises(ValueError, match="square must be one of sample, all"):
        ensemble.evaluate(model, images, labels, square="none", **CHEAP)


def test_an_earlier_rows_ensemble_stands_in_for_step_one_and_the_rounds_go_on_from_it(robust_digits, monkeypatch):
    model, images, labels = robust_digits
    earlier = ensemble.evaluate(model, images, labels, components=("apgd-ce", "latent"), budget=1, **CHEAP)
    assert earlier["rounds"] == []  # a budget below one round: the ensemble alone, as rows were made before rounds
    run = attacks.run

    def rounds_and_square_only(model, images, labels, attack, eps, *args, **kwargs):
        kind = attack.kind if isinstance(attack, attacks.Attack) else attack
        past_the_budget = kind == "apgd-ce" and eps > 0.3  # the test of how near the edge the standing digits are
        assert kind in ("apgd-odi", "square") or past_the_budget, f"{kind} ran again"
        return run(model, images, labels, attack, eps, *args, **kwargs)

    monkeypatch.setattr(attacks, "run", rounds_and_square_only)
    result = ensemble.evaluate(model, images, labels, components=("apgd-ce", "latent"), earlier=earlier, **CHEAP)
    assert [c["broke"] for c in result["components"]] == [c["broke"] for c in earlier["components"]]
    assert all(c["adopted"] for c in result["components"]) and result["rounds"]
    assert result["ensemble_accuracy"] == earlier["ensemble_accuracy"]
    kept = [code for code in earlier["broken_by"] if code != "."]
    assert [code for code in result["broken_by"] if code in "c12"] == kept
    assert result["robust_accuracy"] <= earlier["ensemble_accuracy"]
    with pytest.raises(ValueError, match="clean verdicts differ"):
        ensemble.evaluate(model, images.roll(1, 0), labels, components=("apgd-ce", "latent"), earlier=earlier,
                          **CHEAP)


def test_a_run_stopped_by_a_smaller_budget_goes_on_as_one_run_with_the_larger_budget(robust_digits, escalated):
    """Rounds 1-4 (a budget of 50), written and read back, then continued to a budget of 400: the rounds, verdicts,
    budgets and margins of one run to 400. Continued at its own budget, a row runs nothing more and keeps its
    Square test."""
    model, images, labels = robust_digits
    smaller = ensemble.evaluate(model, images, labels, components=(), budget=50, **CHEAP)
    assert [r["round"] for r in smaller["rounds"]] == [1, 2, 3, 4] and smaller["square"]["broke"] == 0
    assert not smaller["converged"] and smaller["convergence"]["says"].startswith("not converged after budget 50")
    went_on = ensemble.evaluate(model, images, labels, components=(), budget=400,
                                earlier=json.loads(json.dumps(smaller)), **CHEAP)
    assert all(r["adopted"] for r in went_on["rounds"][:4]) and not any("adopted" in r for r in went_on["rounds"][4:])

    def without_timing(row: dict) -> list[dict]:
        return [{k: v for k, v in r.items() if k not in ("seconds", "adopted")} for r in row["rounds"]]

    assert without_timing(went_on) == without_timing(escalated)
    for key in ("broken_by", "robust_accuracy", "ensemble_accuracy", "escalation_budget", "escalation_margin",
                "convergence", "broken_by_codes"):
        assert went_on[key] == escalated[key], key

    def nothing_may_run(*args, **kwargs):
        raise AssertionError("an attack ran again")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(attacks, "run", nothing_may_run)
        again = ensemble.evaluate(model, images, labels, components=(), budget=400, earlier=escalated, **CHEAP)
    assert without_timing(again) == without_timing(escalated) and all(r["adopted"] for r in again["rounds"])
    assert again["square"] == escalated["square"]
    assert again["broken_by"] == escalated["broken_by"]
    old_rule = {**escalated, "rounds": [{k: v for k, v in r.items() if k != "confirms"} for r in escalated["rounds"]]}
    with pytest.raises(ValueError, match="made before the confirming round"):
        ensemble.evaluate(model, images, labels, components=(), budget=800, earlier=old_rule, **CHEAP)


def test_a_row_made_from_kept_batches_says_what_they_took_where_they_were_attacked(robust_digits, tmp_path,
                                                                                   monkeypatch):
    """A run that goes on from its finished batches reports each stage's time as the batches took it, not the
    moments it spent reading them; a batch kept before batches kept their time leaves its stage's time unknown."""
    import numpy as np

    from explorer import files
    from explorer.evaluation.batch_store import BatchStore

    model, images, labels = robust_digits
    options = {**CHEAP, "components": ("apgd-ce",), "budget": 50, "store": BatchStore(tmp_path)}
    first = ensemble.evaluate(model, images, labels, **options)

    def seconds(row: dict) -> list[float | None]:
        return [stage["seconds"] for stage in (*row["components"], *row["rounds"], row["square"], row["beyond"])]

    def nothing_may_run(*args, **kwargs):
        raise AssertionError("an attack ran again")

    monkeypatch.setattr(attacks, "run", nothing_may_run)
    assert sum(seconds(first)) > 1  # APGD-CE, four rounds, Square and the runs past eps on 32 digits
    assert seconds(ensemble.evaluate(model, images, labels, **options)) == seconds(first)
    untimed = sorted(tmp_path.glob("*.npz"))[0]
    with np.load(untimed) as kept:
        files.write_arrays(untimed, **{name: kept[name] for name in kept.files if name != "seconds"})
    assert None in seconds(ensemble.evaluate(model, images, labels, **options))


def test_the_effort_curves_are_the_committed_numbers_falling_as_effort_grows():
    from explorer.evaluation import effort, results

    table, converged = results.committed("table1"), results.committed("converged")
    curves = effort.effort_curves(table, converged)
    assert set(curves) == set(converged["models"])
    for row_name, values in table["models"].items():
        name = values["checkpoint"]
        points, row = curves[name], converged["models"][name]
        presets = [p for p in points if "preset" in p["stage"]]
        assert [p["accuracy"] for p in presets] == [table["tables"][preset]["rows"][row_name]["worst_case"]
                                                    for preset in ("paper", "strong")]
        stages = [p for p in points if "preset" not in p["stage"]]
        assert stages[0] == {"stage": "clean", "gradients": 1, "accuracy": row["clean_accuracy"]}
        assert stages[-1]["accuracy"] == row["robust_accuracy"]
        assert all(a["gradients"] <= b["gradients"] and a["accuracy"] >= b["accuracy"]
                   for a, b in itertools.pairwise(stages))
    assert curves["triplet-pgd"][3]["gradients"] == 101  # APGD-CE: 100 steps and the first point


def test_where_the_effort_went_counts_every_digit_that_entered_the_rounds(robust_digits):
    from explorer.plots import charts

    model, images, labels = robust_digits
    row = ensemble.evaluate(model, images, labels, components=("apgd-ce",), budget=60, **CHEAP)
    figure = charts.effort_spent_chart({"triplet-pgd": row}).to_dict()
    broken, standing = ([x for trace in figure["data"] if trace["name"] == name for x in trace["x"]]
                        for name in ("broken in the rounds", "still standing"))
    letters = {r["code"] for r in row["rounds"]}
    entered = [budget for budget in row["escalation_budget"] if budget > 0]
    assert sorted(broken + standing) == sorted(entered)
    assert len(broken) == sum(code in letters for code in row["broken_by"])
    assert len(entered) == row["rounds"][0]["digits"]
