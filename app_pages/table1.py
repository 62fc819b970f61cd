"""Page 4: the paper's claim beside our three evaluations of it, as a picture first; then Table 1 itself."""

import streamlit as st

from app_pages.shared import current_dataset
from explorer import data
from explorer.evaluation import effort, ensemble, results, table1
from explorer.plots import charts


@st.cache_data
def committed_table() -> dict:
    return results.committed("table1")


@st.cache_data
def committed_converged(dataset: str = "mnist") -> dict | None:
    """A dataset's converged evaluation file, or None before it has been committed."""
    try:
        return results.committed("converged", dataset)
    except FileNotFoundError:
        return None


def edge_sentence(name: str, row: dict) -> str:
    """How many of a model's standing digits fall just past eps, and what that says about its convergence."""
    beyond, share = row["beyond"], ensemble.beyond_shares(row)[1]
    return (f"{name}: {beyond['broke'][1]:,} of its {beyond['standing']:,} standing digits ({share:.0%}) fall at "
            f"eps {beyond['eps'][1]}" + ("." if row["converged"] else
                                         ", so each doubling of the effort still finds a few: not converged."))


def broken_by(converged: dict) -> None:
    shares = {name: ensemble.share_of_broken(row) for name, row in converged["models"].items()}
    st.subheader("Which attack broke each digit first (converged evaluation)")
    st.plotly_chart(charts.broken_by_chart(shares, converged["made_by"]["digits"]), key="broken_by")


def another_dataset(dataset: str) -> None:
    """Table 1 is the paper's, on MNIST; another dataset's models have their converged evaluation only."""
    title = data.DATASETS[dataset].title
    st.info(f"Table 1 is the paper's, on MNIST: pick MNIST in the sidebar to see it. Below: the converged "
            f"evaluation of the {title} models.")
    converged = committed_converged(dataset)
    if converged is None:
        st.info(f"No converged evaluation of the {title} models is committed yet: `explorer evaluate --converged "
                "--models NAME ...` makes one, in results/" + dataset + "/.")
        return
    st.dataframe([{"model": name, "clean accuracy (%)": round(100 * row["clean_accuracy"], 2),
                   "converged robust accuracy (%)": round(100 * row["robust_accuracy"], 2),
                   "converged?": "yes" if row["converged"] else "no (the lower number is shown)"}
                  for name, row in converged["models"].items()], hide_index=True, key="converged_rows")
    broken_by(converged)
    st.caption(f"{results.how_made(converged)}. Every figure is in `results/{dataset}/converged.json`.")


st.title("Table 1, re-run")
if current_dataset() != "mnist":
    another_dataset(current_dataset())
    st.stop()
content, converged = committed_table(), committed_converged()
st.markdown(
    f"Robust accuracy at eps = {table1.EPS} (L-inf): the share of test digits that no attack of an evaluation "
    "could flip, digit by digit. Each bar is stronger than the one above it: **paper preset** the paper's four "
    "attacks as it states them; **strong preset** the same four with the margin loss, 100 steps and restarts "
    "(strong next to the paper's, *not* the strongest); **converged** the worst case over APGD-CE, an attack on "
    "the latent clusters, a transfer attack and targeted APGD-DLR, then rounds of restarts that double the effort "
    "until two doublings in a row find (almost) nothing more, then Square as a test for masked gradients. "
    "The lowest bar is the one to believe.")
rows, notes = table1.robustness_summary(content, converged)
st.plotly_chart(charts.robustness_chart(rows, notes), key="robustness")
if converged is None:
    st.info("The converged evaluation has not been committed yet: `explorer evaluate --converged` makes it.")
else:
    st.subheader("How the number falls with effort")
    curves = {name: points for name, points in effort.effort_curves(content, converged).items()
              if converged["models"][name]["robust_accuracy"] > 0}
    st.plotly_chart(charts.effort_chart(curves), key="effort")
    st.caption("Robust accuracy against the gradient evaluations each digit still standing was given (log scale). "
               "A line still falling at its right end has not converged; one that flattens has. The models not "
               "drawn fall to 0% at the first attack.")
    escalated = {name: row for name, row in converged["models"].items() if row.get("rounds")}
    if escalated:
        st.subheader("Where the effort went")
        st.plotly_chart(charts.effort_spent_chart(escalated), key="effort_spent")
        st.caption("In each round every digit it attacked got one restart, the half nearest the boundary the rest; "
                   "from round 2 on the half the rounds had found furthest from it sat out, except in a confirming "
                   "round. " + " ".join(f"{name}: {row['convergence']['says']}." for name, row in escalated.items()))
    edge = {name: row for name, row in converged["models"].items() if row.get("beyond", {}).get("standing")}
    if edge:
        st.subheader("How near the edge the survivors sit")
        st.plotly_chart(charts.beyond_chart(edge), key="beyond")
        st.caption("What one APGD-CE run (100 steps) leaves when the digits every attack left standing at eps = "
                   f"{table1.EPS} are attacked with a slightly larger eps. No verdict at {table1.EPS} changes. "
                   + " ".join(edge_sentence(name, row) for name, row in edge.items()))
    broken_by(converged)
    st.caption(f"{results.how_made(converged)}. Every figure is in `results/converged.json`.")

st.subheader("The table")
st.markdown(f"Accuracy (%) per attack at eps = {table1.EPS}. **paper**: the paper's Table 1. **ours**: our own "
            "models under the paper's attack settings and under the strong preset.")
st.dataframe(table1.display_rows(content), hide_index=True, key="table1")
strong_pgd = {row: 100 * values["accuracy"]["PGD"] for row, values in content["tables"]["strong"]["rows"].items()}
control_gap = f"{strong_pgd['Softmax_PGD']:.1f}% against {strong_pgd['Ours_PGD']:.1f}%"
st.markdown(
    "- The triplet loss alone (**Ours**) does not survive any iterative attack, even with the paper's settings.\n"
    "- Only PGD adversarial training (**Ours_PGD**) holds up, and less than the paper says: less again under the "
    "converged evaluation.\n"
    "- FGSM training (**Ours_FGSM**) defeats FGSM and nothing else.\n"
    "- The control the paper lacks (**Softmax_PGD**: the same PGD training without the triplet loss) holds up "
    f"better than Ours_PGD under every attack (strong PGD {control_gap}), so the robustness is adversarial "
    "training's, and the triplet loss takes some of it away.\n"
    "- The paper's PGD column sits far above its BIM column. Below: PGD settings that give that pattern on our "
    "models. It is what an attack that cannot reach its budget produces.")
pattern = content["paper_pattern"]
st.subheader(f"Where a PGD column far above BIM can come from ({pattern['digits']:,} digits)")
st.dataframe([{"PGD setting": label, **{row: round(100 * values[label], 1)
                                         for row, values in pattern["rows"].items()}}
              for label in table1.PATTERN_SETTINGS], hide_index=True, key="pattern")
st.subheader("Evaluation flags")
for flag in content["flags"]:
    st.warning(f"**{flag['check']}** ({flag['where']}): {flag['detail']}")
st.caption(f"{results.how_made(content)}. Every figure is in `results/table1.json`.")
