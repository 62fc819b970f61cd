"""The numbers in the README and in docs/ are the committed results, digit for digit: a re-run that changes a number
must change it there too, or this fails. The tests read numbers and tables, never the wording around them."""

import re
from pathlib import Path

import pytest

from explorer import models
from explorer.evaluation import results, sweeps

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
PAGES = {path.name: path.read_text(encoding="utf-8") for path in sorted((ROOT / "docs").glob("*.md"))}
TEXT = "\n".join([README, *PAGES.values()])  # where a table or a number may stand
TABLE1_LABELS = {"Softmax": "Softmax", "Ours (triplet)": "Ours", "Ours_PGD": "Ours_PGD", "Ours_FGSM": "Ours_FGSM",
                 "Softmax_PGD (control)": "Softmax_PGD"}
COLUMNS = ("No-Attack", "FGSM", "BIM", "MIM", "PGD")


def table_after(heading: str, start: int = 0) -> list[list[str]]:
    """The cells of the first Markdown table after the line that starts with `heading` (found from `start`), header
    rows left out."""
    lines = TEXT[TEXT.index(heading, start):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_table1_in_the_readme_is_the_committed_table1():
    table = results.committed("table1")
    rows, model = table_after("Accuracy in %, eps = 0.3"), None
    checked = 0
    for label, source, *values in rows:
        model = TABLE1_LABELS[label] if label else model
        if source == "paper":
            assert [float(v) for v in values] == [table["paper"][model][c] for c in COLUMNS], label
        else:
            preset = source.split("`")[1]
            accuracy = table["tables"][preset]["rows"][model]["accuracy"]
            assert values == [f"{100 * accuracy[c]:.2f}" for c in COLUMNS], (model, preset)
        checked += 1
    in_the_paper = sum(model in table["paper"] for model in TABLE1_LABELS.values())
    assert checked == 2 * len(TABLE1_LABELS) + in_the_paper  # our two presets for every model, the paper's row


def test_pgd_pattern_table_in_the_readme_is_the_committed_search():
    table = results.committed("table1")
    header = TEXT[TEXT.index("The PGD-pattern search"):].splitlines()[2]
    names = [cell.strip() for cell in header.strip("|").split("|")][1:]
    rows = table_after("The PGD-pattern search")
    for setting, *values in rows:
        for name, value in zip(names, values, strict=True):
            if setting.startswith("BIM, paper preset"):
                expected = table["tables"]["paper"]["rows"][name]["accuracy"]["BIM"]
            else:
                pattern = table["paper_pattern"]["rows"][name]
                expected = next(v for key, v in pattern.items() if key.startswith(setting))
            assert value == f"{100 * expected:.1f}", (setting, name)
    assert len(rows) == 1 + len(table["paper_pattern"]["rows"]["Ours"])


def tables_after(heading: str) -> list[list[str]]:
    """The rows of every Markdown table whose header line starts with `heading`, one list."""
    rows, position = [], TEXT.find(heading)
    while position >= 0:
        rows += table_after(heading, position)
        position = TEXT.find(heading, position + 1)
    return rows


@pytest.mark.parametrize("dataset, heading", [("mnist", "| model | mean same-class distance"),
                                              ("fashion-mnist", "On Fashion-MNIST (`results/fashion-mnist/latent")])
def test_latent_table_in_the_readme_is_the_committed_geometry(dataset, heading):
    latent = results.committed("latent", dataset)["models"]
    rows = table_after(heading)
    assert [row[0] for row in rows] == list(latent)
    for name, *values in rows:
        entry = latent[name]
        assert values == [f"{entry['intra_class_distance']:.2f}", f"{entry['inter_class_distance']:.2f}",
                          f"{entry['intra_inter_ratio']:.3f}", f"{entry['silhouette']:.3f}",
                          f"{100 * entry['knn5_accuracy']:.2f}%"], name


@pytest.mark.parametrize("name", sorted(path.stem for path in models.checkpoint_dir().glob("*.json")))
def test_models_table_gives_each_shipped_checkpoints_clean_accuracy(name):
    row = next(row for row in tables_after("| checkpoint | what it is") if row[0] == f"`{name}`")
    assert row[-1] == f"{100 * models.read_card(models.resolve(name))['clean_accuracy']:.2f}%"


def numbers_in(text: str) -> set[str]:
    """Every number written in `text`, as written: 0.32, 73.80%, 4,636."""
    return set(re.findall(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?%?|\d+(?:\.\d+)?%?", text))


def test_median_flipping_eps_in_the_docs_is_the_committed_sweeps():
    smallest = results.committed("sweeps")["smallest_flipping_eps"]
    medians = {f"{sweeps.median_flipping_eps(smallest[name]['strong']):.2f}" for name in smallest}
    assert medians <= numbers_in(PAGES["results.md"])


def test_figures_quoted_in_the_results_prose_are_the_committed_results():
    table = results.committed("table1")
    accuracy = {preset: {model: row["accuracy"] for model, row in table["tables"][preset]["rows"].items()}
                for preset in ("paper", "strong")}
    steps = table["sensitivity"]
    pattern = table["paper_pattern"]["rows"]
    short_reach = "10 steps of 0.01: can travel 0.1 of the 0.3 budget"
    tiny_steps = "40 steps of 0.001: can travel 0.04"
    short_of_zero = [flag["where"].split() for flag in table["flags"]
                     if flag["check"] == "accuracy does not reach 0% at large eps"]
    assert {preset for preset, _, _ in short_of_zero} <= {"paper"}, "the prose says the strong preset reaches 0%"
    quoted = [f"{100 * accuracy['paper']['Softmax']['PGD']:.0f}%", f"{accuracy['paper']['Ours_FGSM']['FGSM']:.1%}",
              f"{accuracy['paper']['Ours_PGD']['PGD']:.1%}", f"{accuracy['strong']['Ours_PGD']['PGD']:.1%}",
              f"{pattern['Ours_PGD'][short_reach]:.1%}", f"{pattern['Ours'][short_reach]:.1%}",
              f"{pattern['Ours'][tiny_steps]:.1%}",
              *(f"{steps[preset][model][setting]:.1%}" for preset, model, setting in (
                  ("paper", "Softmax", "as preset"), ("paper", "Softmax", "160 steps"),
                  ("paper", "Ours_PGD", "as preset"), ("paper", "Ours_PGD", "160 steps"),
                  ("strong", "Ours_PGD", "as preset"), ("strong", "Ours_PGD", "400 steps"),
                  ("paper", "Softmax_PGD", "as preset"), ("paper", "Softmax_PGD", "160 steps"),
                  ("strong", "Softmax_PGD", "as preset"), ("strong", "Softmax_PGD", "400 steps")))]
    assert set(quoted) <= numbers_in(PAGES["results.md"]), set(quoted) - numbers_in(PAGES["results.md"])
    flagged = {model for _, model, _ in short_of_zero}
    prose = " ".join(PAGES["results.md"].split())
    assert all(f"`{model}`" in prose or model == "softmax" for model in flagged)


def control_and_converged_cells(name: str, row: str) -> list[str]:
    """A model's cells as the README's and the control's tables give them: clean, paper PGD-40, strong worst case,
    and the converged figure with its verdict."""
    table = results.committed("table1")
    converged = results.committed("converged")["models"][name]
    paper, strong = (table["tables"][preset]["rows"][row] for preset in ("paper", "strong"))
    verdict = "converged" if converged["converged"] else "not converged: lower still"
    return [f"{100 * paper['accuracy']['No-Attack']:.2f}%", f"{100 * paper['accuracy']['PGD']:.2f}%",
            f"{100 * strong['worst_case']:.2f}%", f"{100 * converged['robust_accuracy']:.2f}%, {verdict}"]


def test_the_readmes_headline_table_is_the_committed_results():
    table = results.committed("table1")
    rows = table_after("| model | clean | the paper's claim")
    assert [row[0].strip("`") for row in rows] == [values["checkpoint"] for values in table["models"].values()]
    for (name, clean, claim, paper_pgd, strong, converged), row in zip(rows, table["models"], strict=True):
        assert [clean, paper_pgd, strong, converged] == control_and_converged_cells(name.strip("`"), row), name
        assert claim == (f"{table['paper'][row]['PGD']:.2f}%" if row in table["paper"] else "not in the paper")


def test_the_control_table_is_the_committed_results():
    table = results.committed("table1")
    rows = table_after("| | clean | paper PGD | strong PGD")
    rows_by_model = {"softmax-pgd": "Softmax_PGD", "triplet-pgd": "Ours_PGD"}
    assert [row[0].split("`")[1] for row in rows] == list(rows_by_model)
    for (_, clean, paper_pgd, strong_pgd, strong, converged), (name, row) in zip(rows, rows_by_model.items(),
                                                                                  strict=True):
        assert [clean, paper_pgd, strong, converged] == control_and_converged_cells(name, row), row
        assert strong_pgd == f"{100 * table['tables']['strong']['rows'][row]['accuracy']['PGD']:.2f}%"


def test_the_converged_table_is_the_committed_evaluation():
    from explorer.evaluation import ensemble

    converged = results.committed("converged")["models"]
    rows = table_after("| model | clean | converged robust accuracy")
    assert [row[0] for row in rows] == [name for name in converged]
    for name, clean, robust, verdict, broken in rows:
        row = converged[name]
        assert (clean, robust) == (f"{100 * row['clean_accuracy']:.2f}%", f"{100 * row['robust_accuracy']:.2f}%")
        assert verdict == ("yes" if row["converged"] else "no")
        counts = sorted((count for count in ensemble.share_of_broken(row).values() if count), reverse=True)
        assert [int(n.replace(",", "")) for n in re.findall(r"\d{1,3}(?:,\d{3})+|\d+", broken)] == counts, name


def test_fashion_mnists_converged_figures_are_the_committed_evaluation():
    converged = results.committed("converged", "fashion-mnist")["models"]
    assert {f"{row['components'][0]['broke']:,}" for row in converged.values()} <= numbers_in(
        PAGES["converged.md"])
    assert all(row["components"][0]["attack"] == "apgd-ce" for row in converged.values())
    assert all(row["robust_accuracy"] == 0 and row["converged"] for row in converged.values())
    assert all(row["components"][0]["broke"] == round(row["clean_accuracy"] * row["digits"])
               for row in converged.values())


def test_the_readmes_python_examples_run_in_order():
    """Every ```python block of the README, run one after another in one namespace, as a reader would paste them."""
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
    assert len(blocks) >= 2
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["adv"].shape == (100, 1, 28, 28) and namespace["z"].shape == (100, 64)
    assert 0 <= namespace["result"]["robust_accuracy"] <= 1
