"""The converged evaluation: each digit's worst case over an ensemble of attacks, run cheapest first, each only on
the digits the ones before left standing (as AutoAttack runs its four), then a check that it has converged.

The ensemble: APGD-CE (100 gradients a digit), the latent attack (100), the transfer attack (100 on the source,
none on the target), APGD-T (9 targets, 100 each) and Square (5,000 queries, no gradients). A digit already
misclassified clean counts as broken by "clean". The check re-runs the strongest component, APGD-T, with twice the
iterations and twice the restarts on the digits still standing: if it breaks more than half a point's worth of
them, the evaluation has not converged, and says so wherever its number is shown. Either way the number reported
is the lower one, after the check.
"""

from __future__ import annotations

import time
from dataclasses import replace

import torch
from tqdm import tqdm

from explorer.attacks.params import params_for
from explorer.evaluation.batch_store import BatchStore
from explorer.evaluation.evaluate import misclassified
from explorer.evaluation.runners import LocalRunner, attack_batch

COMPONENTS = ("apgd-ce", "latent", "transfer", "apgd-t", "square")
STRONGEST = "apgd-t"
TOLERANCE = 0.005  # half a point of robust accuracy
ROBUST, CLEAN = ".", "c"  # the codes of `broken_by`; a component's code is its number in the ensemble, from 1


def doubled(kind: str) -> dict:
    params = params_for(kind)
    return {"steps": 2 * params.steps, "restarts": 2 * params.restarts}


def attack_in_batches(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, kind: str, eps: float,
                      broken: torch.Tensor, *, batch_size: int, store: BatchStore | None, bar: tqdm,
                      **overrides) -> tuple[torch.Tensor, int]:
    """`kind` on the digits not yet `broken`, batch by batch (batch b seeded with its first index); returns the
    digits it broke and how many had an all-zero gradient."""
    newly, zero_gradient = torch.zeros_like(broken), 0
    settings = (kind, params_for(kind, **overrides).as_record(), [eps])
    jobs, waiting = [], []
    for start in range(0, len(images), batch_size):
        batch = slice(start, start + batch_size)
        standing = ~broken[batch]
        if not standing.any():
            bar.update(1)
            continue
        key = None
        if store is not None:
            key = store.key(model, images[batch], labels[batch], start, *settings, broken[batch])
            if (kept := store.get(key, (1, len(images[batch])))) is not None:
                newly[batch] = kept[0][0] & standing
                zero_gradient += int(kept[1].sum())
                bar.update(1)
                continue
        jobs.append({"images": images[batch].clone(), "labels": labels[batch].clone(), "kind": kind, "eps": eps,
                     "seed": start, "already_fooled": ~standing[None], **overrides})
        waiting.append((batch, standing, key))
    runner = store.runner if store is not None else LocalRunner()
    for index, (fooled, zero) in runner.map(attack_batch, model, jobs):
        batch, standing, key = waiting[index]
        if store is not None:
            store.put(key, fooled, zero)
        newly[batch] = fooled[0] & standing
        zero_gradient += int(zero.sum())
        bar.set_postfix(attack=kind, standing=int((~(broken | newly)).sum()))
        bar.update(1)
    return newly, zero_gradient


def evaluate(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float = 0.3, *,
             components: tuple[str, ...] = COMPONENTS, check_digits: int | None = None, batch_size: int = 500,
             store: BatchStore | None = None, progress: bool = True) -> dict:
    """The converged robust accuracy of `model` on `images`, with which attack broke which digit, what each cost,
    and the convergence check (on the first `check_digits` digits; all of them when None)."""
    clean_wrong = misclassified(model, images, labels, batch_size)
    broken = clean_wrong.clone()
    codes = [CLEAN if wrong else ROBUST for wrong in clean_wrong.tolist()]
    batches = -(-len(images) // batch_size)
    check_count = len(images) if check_digits is None else min(check_digits, len(images))
    bar = tqdm(total=batches * len(components) + -(-check_count // batch_size), desc="converged evaluation",
               disable=not progress, leave=False)
    report = []
    for number, kind in enumerate(components, start=1):
        began = time.monotonic()
        newly, zero_gradient = attack_in_batches(model, images, labels, kind, eps, broken, batch_size=batch_size,
                                                 store=store, bar=bar)
        for index in newly.nonzero().squeeze(1).tolist():
            codes[index] = str(number)
        broken |= newly
        report.append({"attack": kind, "params": params_for(kind).as_record(), "broke": int(newly.sum()),
                       "standing_after": int((~broken).sum()), "zero_gradient": zero_gradient,
                       "seconds": round(time.monotonic() - began, 1)})
    ensemble_accuracy = 1 - float(broken.double().mean())

    began = time.monotonic()
    overrides = doubled(STRONGEST)
    subset = slice(0, check_count)
    newly, _ = attack_in_batches(model, images[subset], labels[subset], STRONGEST, eps, broken[subset],
                                 batch_size=batch_size, store=store, bar=bar, **overrides)
    bar.close()
    for index in newly.nonzero().squeeze(1).tolist():
        codes[index] = "+"
    broken[subset] |= newly
    change = float(newly.sum()) / check_count
    check = {"attack": STRONGEST, "params": replace(params_for(STRONGEST), **overrides).as_record(),
             "digits": check_count, "broke": int(newly.sum()), "change": change, "tolerance": TOLERANCE,
             "converged": change < TOLERANCE, "seconds": round(time.monotonic() - began, 1)}
    return {"eps": eps, "digits": len(images), "clean_accuracy": 1 - float(clean_wrong.double().mean()),
            "robust_accuracy": 1 - float(broken.double().mean()), "ensemble_accuracy": ensemble_accuracy,
            "converged": check["converged"], "components": report, "check": check,
            "broken_by": "".join(codes),
            "broken_by_codes": {ROBUST: "still standing", CLEAN: "misclassified clean",
                                **{str(i): kind for i, kind in enumerate(components, start=1)},
                                "+": f"the check ({STRONGEST}, doubled)"}}


def share_of_broken(result: dict) -> dict[str, int]:
    """How many digits each attack (or the clean verdict, or the check) broke first."""
    codes = result["broken_by_codes"]
    return {codes[code]: result["broken_by"].count(code) for code in codes if code != ROBUST}
