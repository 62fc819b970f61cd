"""Robust accuracy against effort: how a model's number falls as each digit still standing is given more gradient
evaluations, from the presets' four attacks through the converged evaluation's ensemble and rounds. What the Table 1
page's convergence picture draws."""

from __future__ import annotations

from explorer.evaluation.ensemble import gradients_per_digit

# Gradient evaluations a digit costs each way of evaluating: the presets' four attacks together (FGSM, BIM, MIM
# and PGD, the worst case over them), and AutoAttack's standard run (APGD-CE 100, APGD-T and FAB-T 9 x 100 each;
# Square's 5,000 queries are forward passes)
PRESET_GRADIENTS = {"paper": 1 + 10 + 10 + 40, "strong": 1 + 100 + 100 + 5 * 100}
AUTOATTACK_STANDARD_GRADIENTS = 101 + 2 * 9 * 101


def effort_curves(content: dict, converged: dict | None) -> dict[str, list[dict]]:
    """Per checkpoint of Table 1 with a converged row, robust accuracy against gradient evaluations per digit:
    the paper and strong presets' worst case, then the converged evaluation stage by stage."""
    curves = {}
    for row, values in content["models"].items():
        found = (converged or {}).get("models", {}).get(values["checkpoint"])
        if found is None:
            continue
        presets = [{"stage": f"{preset} preset (worst of 4 attacks)", "gradients": PRESET_GRADIENTS[preset],
                    "accuracy": content["tables"][preset]["rows"][row]["worst_case"]} for preset in PRESET_GRADIENTS]
        curves[values["checkpoint"]] = presets + effort_curve(found)
    return curves


def effort_curve(row: dict) -> list[dict]:
    """A converged row as robust accuracy against the gradient evaluations a digit still standing has been given,
    one point per stage: clean first (one forward pass, drawn at 1), then each component, round and Square."""
    digits = row["digits"]
    points = [{"stage": "clean", "gradients": 1, "accuracy": row["clean_accuracy"]}]
    spent = 0
    for stage in row["components"]:
        overrides = {k: v for k, v in stage["params"].items() if k in ("steps", "restarts", "targets")}
        spent += gradients_per_digit(stage["attack"], **overrides)
        label = stage["attack"] + (" (earlier check, doubled)" if "change" in stage else "")
        points.append({"stage": label, "gradients": max(spent, 1), "accuracy": stage["standing_after"] / digits})
    for number, stage in enumerate(row.get("rounds", []), start=1):
        spent += stage["gradients_per_digit"]
        points.append({"stage": f"round {number}", "gradients": spent, "accuracy": stage["standing_after"] / digits})
    if "square" in row:
        points.append({"stage": f"square on {row['square']['ran_on']:,}", "gradients": max(spent, 1),
                       "accuracy": row["robust_accuracy"]})
    elif check := row.get("check"):  # a row made before the rounds: its check, doubled APGD-T
        spent += gradients_per_digit(check["attack"], steps=check["params"]["steps"],
                                     restarts=check["params"]["restarts"], targets=check["params"].get("targets"))
        points.append({"stage": "the check (doubled)", "gradients": spent, "accuracy": row["robust_accuracy"]})
    return points
