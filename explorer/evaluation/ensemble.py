"""The converged evaluation: each digit's worst case over everything that ran, going on until more effort stops
finding anything.

1. The ensemble, cheapest first, each attack only on the digits the ones before left standing (as AutoAttack runs
   its four): APGD-CE (100 gradients a digit), the latent attack (100), the transfer attack (100 on the source,
   none on the target) and APGD-T (9 targets, 100 each). A digit misclassified clean counts as broken by "clean".
2. Escalation rounds on the digits still standing: APGD-CE from output-diversified starts (ODI), each round twice
   the last one's budget (steps and restarts doubled in turn), its restarts spent by successive halving on the
   digits nearest the boundary (A3): one for every digit, one more for the nearest half, two for the nearest
   quarter, and so on. From round 2 on, the half of the standing digits whose smallest margin in the rounds so far
   is largest sits the round out: a digit the rounds found far from the boundary stops drawing budget. It has
   converged when two doublings in a row each broke at most half a point's worth of the digits, the second (the
   confirming round) attacking every standing digit, far half included (Carlini et al.: doubling iterations and
   restarts must change nothing; one quiet doubling alone is within the noise of a few hundred digits). It stops
   unconverged when the next round would give a digit more than `budget` gradient evaluations, and says what its
   last round still broke.
3. Square (5,000 queries, no gradients) as the test for masked gradients it is: on a sample of the standing digits,
   and on all of them when it breaks any digit in the sample that every gradient attack missed (or when asked).
4. How near the edge the standing digits are: one APGD-CE run on each at a slightly larger eps (0.305, 0.31, 0.32
   for 0.3). It changes no verdict; it says why rounds may never settle: where many fall just past eps, the model's
   boundary lies at its budget, and every doubling of the effort finds a few more.

An earlier row of the same weights and digits can stand in for step 1: its attacks' per-digit verdicts are kept as
they were, with their record, and the rounds go on from the digits it left standing. When it has rounds of its own
(a run that stopped at a smaller budget), they are kept too, with each digit's budget and smallest margin so far,
and the rounds go on from the next one: the same rounds, the same digits sitting out, as one run with the larger
budget (when its Square test broke nothing).
"""

from __future__ import annotations

import time

import torch
from tqdm import tqdm

from explorer import data
from explorer.attacks import odi
from explorer.attacks.params import Attack, params_for
from explorer.evaluation.batch_store import BatchStore
from explorer.evaluation.runners import LocalRunner, attack_batch, escalation_batch
from explorer.models.forward import misclassified

COMPONENTS = ("apgd-ce", "latent", "transfer", "apgd-t")
ESCALATION = "apgd-odi"
TOLERANCE = 0.005  # half a point of robust accuracy
DEFAULT_BUDGET = 13_000  # escalation gradients a digit may receive: rounds 1-5 (12,520 at most)
SQUARE_MODES = ("sample", "all")
BEYOND = (0.005, 0.01, 0.02)  # how far past eps the standing digits are tried
SQUARE_SAMPLE = (0.05, 20)  # the share of the standing digits Square tries first, and the fewest it tries
ROBUST, CLEAN, SQUARE, CHECK = ".", "c", "S", "+"  # codes of `broken_by`: a component's is its number from 1, a
# round's a letter; CHECK is an earlier evaluation's check (APGD-T doubled), kept when its row is adopted


FIRST_ROUND = (100, 4)  # steps, restarts


def round_settings(number: int, first: tuple[int, int] = FIRST_ROUND) -> dict[str, int]:
    """Round 1 is `first`; each later round doubles steps or restarts in turn."""
    return {"steps": first[0] * 2 ** (number // 2), "restarts": first[1] * 2 ** ((number - 1) // 2)}


def component(kind: str, dataset: str = "mnist") -> Attack:
    """The ensemble's attack of `kind`, with AutoAttack's settings; the transfer attack is made on the dataset's
    softmax model."""
    source = {"source": data.DATASETS[dataset].checkpoint_prefix + "softmax"} if kind == "transfer" else {}
    return Attack.of(kind, **source)


def gradients_per_digit(kind: str, **overrides) -> int:
    """The most gradient evaluations one digit costs an attack of the ensemble (the first point's included);
    Square asks for none."""
    if kind == "square":
        return 0
    params = params_for(kind, **overrides)
    per_run = params.steps + 1 + (odi.DIVERSIFYING_STEPS if kind == ESCALATION else 0)
    return per_run * params.restarts * (params.targets or 1)


def attack_in_batches(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, attack: Attack | None,
                      eps: float, broken: torch.Tensor, *, batch_size: int, store: BatchStore | None, bar: tqdm,
                      **escalation) -> tuple[dict[str, torch.Tensor], float | None]:
    """`attack` (None: an escalation round of these `escalation` settings) on the digits not yet `broken`, batch by
    batch (batch b seeded with its first index). Returns each digit's arrays, as the job returned them ("fooled"
    holds the digits it broke), and the seconds the batches took, kept ones included where they attacked (None when
    a kept batch did not record its time)."""
    escalating = attack is None
    function = escalation_batch if escalating else attack_batch
    kind, record = ("escalation", escalation) if escalating else (attack.kind, attack.params.as_record())
    names = ("fooled", "zero_gradient", "margin", "budget") if escalating else ("fooled", "zero_gradient")
    found = {name: torch.zeros(len(images), dtype=torch.bool) for name in ("fooled", "zero_gradient")}
    if escalating:
        found |= {"margin": torch.full((len(images),), float("inf")), "budget": torch.zeros(len(images), dtype=int)}
    jobs, waiting, seconds = [], [], 0.0
    for start in range(0, len(images), batch_size):
        batch = slice(start, start + batch_size)
        standing = ~broken[batch]
        if not standing.any():
            bar.update(1)
            continue
        key = None
        if store is not None:
            key = store.key(model, images[batch], labels[batch], start, kind, record, [eps], broken[batch])
            shape = (1, len(images[batch]))
            if (kept := store.get(key, dict.fromkeys(names, shape))) is not None:
                _take(found, kept, batch, standing)
                took = store.seconds(key)
                seconds = _plus(seconds, took)
                bar.update(1)
                continue
        job = {"images": images[batch].clone(), "labels": labels[batch].clone(), "eps": eps, "seed": start,
               "already_fooled": ~standing[None]}
        jobs.append(job | (escalation if escalating else {"attack": attack}))
        waiting.append((batch, standing, key))
    runner = store.runner if store is not None else LocalRunner()
    mark = time.monotonic()
    for index, outcome in runner.map(function, model, jobs):
        now = time.monotonic()
        took, mark = now - mark, now  # with batches attacked side by side, each one's share of the wall clock
        seconds = _plus(seconds, took)
        batch, standing, key = waiting[index]
        arrays = outcome if escalating else dict(zip(names, outcome, strict=True))
        if store is not None:
            store.put(key, **arrays, seconds=torch.tensor([took], dtype=torch.float64))
        _take(found, arrays, batch, standing)
        bar.set_postfix(attack=kind, standing=int((~(broken | found["fooled"])).sum()))
        bar.update(1)
    return found, seconds


def _take(found: dict[str, torch.Tensor], arrays: dict[str, torch.Tensor], batch: slice,
          standing: torch.Tensor) -> None:
    found["fooled"][batch] = arrays["fooled"][0] & standing
    for name in found.keys() - {"fooled"}:
        found[name][batch] = arrays[name][0]


class Tally:
    """Which stage broke each digit first, and the robust accuracy after each stage."""

    def __init__(self, clean_wrong: torch.Tensor) -> None:
        self.broken = clean_wrong.clone()
        self.codes = [CLEAN if wrong else ROBUST for wrong in clean_wrong.tolist()]

    def add(self, newly: torch.Tensor, code: str) -> int:
        for index in newly.nonzero().squeeze(1).tolist():
            self.codes[index] = code
        self.broken |= newly
        return int(newly.sum())

    @property
    def standing(self) -> int:
        return int((~self.broken).sum())


def evaluate(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float = 0.3, *,
             components: tuple[str, ...] = COMPONENTS, budget: int = DEFAULT_BUDGET, square: str = "sample",
             first_round: tuple[int, int] = FIRST_ROUND, square_queries: int | None = None, batch_size: int = 500,
             earlier: dict | None = None, store: BatchStore | None = None, progress: bool = True,
             dataset: str = "mnist") -> dict:
    """The converged robust accuracy of `model` (of `dataset`) on `images`: which stage broke which digit, what
    each cost, the escalation rounds with their verdict, what Square found, and how many of the standing digits
    fall just past eps (`beyond`). `first_round` (steps, restarts)
    and `square_queries` make it cheaper for a test; the results files use the defaults. `earlier`: a row of these
    weights on these digits whose ensemble stands in for step 1, and whose rounds, if any, the escalation goes on
    from (its Square test kept when no round is added)."""
    if square not in SQUARE_MODES:
        raise ValueError(f"square must be one of {', '.join(SQUARE_MODES)}, not {square!r}")
    tally = Tally(misclassified(model, images, labels, batch_size))
    batches = -(-len(images) // batch_size)
    bar = tqdm(total=0 if earlier else batches * len(components), desc="converged evaluation",
               disable=not progress, leave=False)
    run = {"model": model, "images": images, "labels": labels, "eps": eps, "batch_size": batch_size,
           "store": store, "bar": bar}
    report = adopt(tally, earlier, components) if earlier else []
    earlier_rounds = adopt_rounds(earlier, first_round) if earlier else None
    for number, kind in enumerate(() if earlier else components, start=1):
        attack = component(kind, dataset)
        found, seconds = attack_in_batches(attack=attack, broken=tally.broken, **run)
        report.append({"attack": kind, "params": attack.params.as_record(),
                       "broke": tally.add(found["fooled"], str(number)), "standing_after": tally.standing,
                       "zero_gradient": int(found["zero_gradient"].sum()),
                       "gradients_per_digit": gradients_per_digit(kind), "seconds": _rounded(seconds)})
    ensemble_accuracy = earlier["ensemble_accuracy"] if earlier_rounds else tally.standing / len(images)
    rounds, spent, margin = escalate(tally, run, budget, first_round, bar, earlier_rounds)
    convergence = verdict(rounds, budget, len(images), round(ensemble_accuracy * len(images)))
    went_on = not earlier_rounds or len(rounds) > len(earlier_rounds["rounds"])
    square_report = (square_test(tally, run, square, square_queries) if went_on or not _same_square(
        earlier.get("square"), square, square_queries) else earlier["square"])
    same_standing = not went_on and square_report is earlier["square"]  # nothing new ran: the same digits stand
    kept_beyond = earlier.get("beyond") if same_standing else None
    beyond = kept_beyond if kept_beyond and kept_beyond["eps"] == beyond_eps(eps) else beyond_test(tally, run)
    bar.close()
    codes = {ROBUST: "still standing", CLEAN: "misclassified clean",
             **{str(i): kind for i, kind in enumerate(components, start=1)},
             **{r["code"]: f"round {r['round']} ({ESCALATION}, {r['steps']} steps x {r['restarts']} restarts)"
                for r in rounds}, SQUARE: "square"}
    if CHECK in tally.codes:
        codes[CHECK] = earlier["broken_by_codes"][CHECK]
    return {"eps": eps, "digits": len(images), "clean_accuracy": 1 - sum(c == CLEAN for c in tally.codes) / len(images),
            "robust_accuracy": tally.standing / len(images), "ensemble_accuracy": ensemble_accuracy,
            "converged": convergence["converged"], "components": report, "rounds": rounds,
            "convergence": convergence, "square": square_report, "beyond": beyond,
            "escalation_budget": spent.tolist(),
            "escalation_margin": [None if m == float("inf") else float(f"{m:.9g}") for m in margin.tolist()],
            "broken_by": "".join(tally.codes), "broken_by_codes": codes}


def adopt(tally: Tally, earlier: dict, components: tuple[str, ...]) -> list[dict]:
    """Take an earlier row's verdicts for each digit as this run's step 1 (its clean verdicts must be this model's):
    its components keep their numbers, its Square and its check their codes. Returns its stages' records."""
    names = earlier["broken_by_codes"]
    if len(earlier["broken_by"]) != len(tally.codes) or [code == CLEAN for code in earlier["broken_by"]] != [
            code == CLEAN for code in tally.codes]:
        raise ValueError("the earlier row is not of this model on these digits: its clean verdicts differ")
    number_of = {kind: str(i) for i, kind in enumerate(components, start=1)}
    kept = {ROBUST, CLEAN, CHECK, *(r["code"] for r in earlier.get("rounds", []))}
    for index, code in enumerate(earlier["broken_by"]):
        name = names[code]
        if code not in kept and name not in number_of and name != "square":
            raise ValueError(f"the earlier row's {name!r} is not a stage of this evaluation")
        new = code if code in kept else SQUARE if name == "square" else number_of[name]
        tally.codes[index] = new
        tally.broken[index] = new != ROBUST
    stages = [{**part, "adopted": True} for part in earlier["components"]]
    if check := earlier.get("check"):
        stages.append({**check, "adopted": True, "standing_after": stages[-1]["standing_after"] - check["broke"]})
    return stages


def adopt_rounds(earlier: dict, first: tuple[int, int]) -> dict | None:
    """An earlier row's rounds, for the escalation to go on from: the rounds, each digit's gradients and smallest
    margin so far. None when it has no rounds. Refuses rounds of other settings, or made before rows kept margins."""
    rounds = earlier.get("rounds", [])
    if not rounds:
        return None
    if "escalation_margin" not in earlier or any("confirms" not in r for r in rounds):
        raise ValueError("its rounds were made before the confirming round and the far half sitting out, so they "
                         "cannot go on")
    if any((r["steps"], r["restarts"]) != tuple(round_settings(r["round"], first).values()) for r in rounds):
        raise ValueError("its rounds were made with another first round, so they cannot go on")
    if not len(earlier["escalation_margin"]) == len(earlier["escalation_budget"]) == len(earlier["broken_by"]):
        raise ValueError("its escalation_margin, escalation_budget and broken_by differ in length: it is damaged")
    margin = [float("inf") if m is None else m for m in earlier["escalation_margin"]]
    return {"rounds": [{**r, "adopted": True} for r in rounds],
            "spent": torch.tensor(earlier["escalation_budget"], dtype=torch.int64), "margin": torch.tensor(margin)}


def escalate(tally: Tally, run: dict, budget: int, first: tuple[int, int], bar: tqdm, earlier: dict | None = None
             ) -> tuple[list[dict], torch.Tensor, torch.Tensor]:
    """Rounds of growing strength on the standing digits until two doublings in a row each broke at most half a
    point's worth, the second on every standing digit, or the next round would pass `budget`. From round 2 on, the
    far half (by margin) sits out, except in a confirming round. `earlier`: rounds already run (adopt_rounds), to go
    on from. Returns the rounds, each digit's escalation gradients and its smallest margin in any round."""
    spent = torch.zeros(len(tally.codes), dtype=torch.int64)
    margin = torch.full((len(tally.codes),), float("inf"))  # each digit's smallest margin in any round so far
    rounds: list[dict] = []
    number, confirming = 1, False
    if earlier:
        rounds, spent, margin = list(earlier["rounds"]), earlier["spent"].clone(), earlier["margin"].clone()
        last = rounds[-1]
        if quiet(last, len(tally.codes)) and last["confirms"]:
            return rounds, spent, margin
        number, confirming = last["round"] + 1, quiet(last, len(tally.codes))
    while tally.standing:
        settings = round_settings(number, first)
        cost = gradients_per_digit(ESCALATION, **settings)
        if int(spent.max()) + cost > budget:
            break
        everyone = number == 1 or confirming
        sitting_out = torch.zeros_like(tally.broken) if everyone else far_half(margin, ~tally.broken)
        bar.total += -(-len(tally.codes) // run["batch_size"])
        found, seconds = attack_in_batches(attack=None, broken=tally.broken | sitting_out, **run, **settings)
        spent += found["budget"]
        margin = torch.minimum(margin, found["margin"])
        code = chr(ord("A") + number - 1)
        rounds.append({"round": number, "code": code, "attack": ESCALATION, **settings,
                       "digits": tally.standing - int(sitting_out.sum()), "sat_out": int(sitting_out.sum()),
                       "confirms": confirming, "broke": tally.add(found["fooled"], code),
                       "standing_after": tally.standing, "gradients_per_digit": cost,
                       "gradients": int(found["budget"].sum()), "seconds": _rounded(seconds)})
        if quiet(rounds[-1], len(tally.codes)) and confirming:
            break
        confirming = quiet(rounds[-1], len(tally.codes))
        number += 1
    return rounds, spent, margin


def quiet(stage: dict, digits: int) -> bool:
    """Whether a round after the first broke at most half a point's worth of the digits."""
    return stage["round"] > 1 and stage["broke"] <= TOLERANCE * digits


def far_half(margin: torch.Tensor, standing: torch.Tensor) -> torch.Tensor:
    """The standing digits whose smallest margin so far lies above the median of the standing digits' margins:
    the ones the rounds so far found furthest from the boundary, which sit out the next round."""
    if not standing.any():
        return standing
    return standing & (margin > margin[standing].median())


def verdict(rounds: list[dict], budget: int, digits: int, standing: int) -> dict:
    """Converged when nothing was left standing, or two rounds in a row, each doubling the one before, broke at most
    half a point's worth of the digits, the second attacking every standing digit: one quiet doubling alone is
    within the noise of a few hundred digits."""
    allowed = int(TOLERANCE * digits)
    rule = (f"two rounds in a row, each with twice the last one's budget, break at most {TOLERANCE:.1%} of the "
            f"digits ({allowed} of {digits:,}), the second on every standing digit")
    last = rounds[-1] if rounds else {"round": 0, "broke": 0, "standing_after": standing}
    confirmed = quiet(last, digits) and last.get("confirms", False)
    converged = last["standing_after"] == 0 or confirmed
    if confirmed:
        says = (f"converged: round {last['round']} broke {last['broke']} on every standing digit, after round "
                f"{last['round'] - 1} broke {rounds[-2]['broke']}")
    elif converged:
        says = "converged: no digit left standing"
    elif quiet(last, digits):
        says = (f"not converged after budget {budget:,}: the last round broke {last['broke']}, but the round that "
                "would confirm it passes the budget")
    else:
        says = f"not converged after budget {budget:,}: the last round still broke {last['broke']}"
    return {"converged": converged, "rule": rule, "budget": budget, "last_round_broke": last["broke"], "says": says}


def square_test(tally: Tally, run: dict, mode: str, queries: int | None) -> dict:
    """Square on a sample of the standing digits (every k-th), then on all of them if it broke any there: a digit
    only Square breaks means the gradients mislead the gradient attacks."""
    standing = (~tally.broken).nonzero().squeeze(1)
    share, fewest = SQUARE_SAMPLE
    size = len(standing) if mode == "all" else min(len(standing), max(fewest, round(share * len(standing))))
    picked = standing[torch.linspace(0, len(standing) - 1, size).long()] if size else standing
    broke, seconds = _square_on(tally, run, picked, queries)
    sample_broke, masking = broke, broke > 0 and mode == "sample"
    if masking:
        more, more_seconds = _square_on(tally, run, (~tally.broken).nonzero().squeeze(1), queries)
        broke += more
        seconds = _plus(seconds, more_seconds)
    return {"mode": mode, "params": _square(queries).params.as_record(), "sampled": size,
            "sample_broke": sample_broke, "ran_on": len(standing) if mode == "all" or masking else size, "broke": broke,
            "masking_suspected": broke > 0, "seconds": _rounded(seconds)}


def beyond_eps(eps: float) -> list[float]:
    return [round(eps + offset, 6) for offset in BEYOND]


def beyond_test(tally: Tally, run: dict) -> dict:
    """How many of the standing digits one APGD-CE run (the ensemble's first component) breaks at each eps of
    `beyond_eps`, each run on every standing digit; no verdict at the evaluation's eps changes."""
    attack, broke, seconds = component("apgd-ce"), [], 0.0
    for larger in beyond_eps(run["eps"]):
        run["bar"].total += -(-len(tally.codes) // run["batch_size"])
        found, took = attack_in_batches(attack=attack, broken=tally.broken, **{**run, "eps": larger})
        broke.append(int(found["fooled"].sum()))
        seconds = _plus(seconds, took)
    return {"attack": "apgd-ce", "params": attack.params.as_record(), "eps": beyond_eps(run["eps"]),
            "standing": tally.standing, "broke": broke, "seconds": _rounded(seconds)}


def beyond_shares(row: dict) -> list[float]:
    """The share of a row's standing digits that one APGD-CE run broke at each eps of its `beyond`."""
    beyond = row["beyond"]
    return [broke / beyond["standing"] if beyond["standing"] else 0.0 for broke in beyond["broke"]]


def _square_on(tally: Tally, run: dict, digits: torch.Tensor, queries: int | None) -> tuple[int, float | None]:
    if not len(digits):
        return 0, 0.0
    others = torch.ones_like(tally.broken)
    others[digits] = False
    run["bar"].total += -(-len(tally.codes) // run["batch_size"])
    found, seconds = attack_in_batches(attack=_square(queries), broken=tally.broken | others, **run)
    return tally.add(found["fooled"], SQUARE), seconds


def _plus(seconds: float | None, more: float | None) -> float | None:
    """Seconds added up, unknown (None) once any part is."""
    return None if seconds is None or more is None else seconds + more


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


def _same_square(report: dict | None, mode: str, queries: int | None) -> bool:
    """Whether an earlier row's Square test is the one this run would make (on the same standing digits)."""
    return bool(report) and report["mode"] == mode and report["params"] == _square(queries).params.as_record()


def _square(queries: int | None) -> Attack:
    return Attack.of("square", **({"steps": queries} if queries else {}))


def share_of_broken(result: dict) -> dict[str, int]:
    """How many digits each attack, round (or the clean verdict) broke first."""
    codes = result["broken_by_codes"]
    return {codes[code]: result["broken_by"].count(code) for code in codes if code != ROBUST}
