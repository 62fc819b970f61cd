"""Page 6: the method in brief, a five-minute classroom walk through the pages, and what our reproduction found.

Every number comes from the committed results files, so the guide says what the other pages show.
"""

import streamlit as st

from explorer import attacks
from explorer.evaluation import ensemble, results, sweeps, table1


@st.cache_data
def committed(name: str, dataset: str = "mnist") -> dict:
    return results.committed(name, dataset)


def edge_share(row: dict) -> str:
    """The share of a converged row's standing digits that one APGD-CE run breaks at eps + 0.01."""
    return f"{ensemble.beyond_shares(row)[1]:.0%}"


table, sweep, latent = committed("table1"), committed("sweeps"), committed("latent")
converged, control_converged = (committed("converged")["models"][name] for name in ("triplet-pgd", "softmax-pgd"))
CONVERGED_VERDICT = "converged" if converged["converged"] else "and has not converged either: lower still"
CONTROL_VERDICT = "converged" if control_converged["converged"] else "not converged: lower still"
EDGE_CONSEQUENCE = "" if converged["converged"] else ", so every doubling of the effort still finds a few"
fashion_converged = committed("converged", "fashion-mnist")["models"]
fashion_geometry = committed("latent", "fashion-mnist")["models"]
ours, paper, pattern = table["tables"], table["paper"], table["paper_pattern"]["rows"]
geometry = latent["models"]


def accuracy(preset: str, row: str, column: str) -> str:
    return f"{100 * ours[preset]['rows'][row]['accuracy'][column]:.1f}%"


def pgd_when(setting: str, row: str) -> str:
    return f"{100 * pattern[row][setting]:.1f}%"


def median_flip(model: str) -> str:
    median = sweeps.median_flipping_eps(sweep["smallest_flipping_eps"][model]["strong"])
    return f"{median:.2f}" if median is not None else f"above {sweep['eps'][-1]:.2f}"


SHORT_PGD = "10 steps of 0.01: can travel 0.1 of the 0.3 budget"
TINY_STEP_PGD = "40 steps of 0.001: can travel 0.04"
strong_steps = attacks.params_for("pgd", "strong").steps
MORE_STEPS = f"{4 * strong_steps} steps"
checks = table["sensitivity"]["strong"]["Ours_PGD"]

st.title("Guide")

st.header("The paper's claim")
st.markdown(f"""
Fostiropoulos, Shbita and Marmarelis train an MNIST ConvNet whose 64-d penultimate layer (the *embedding*, or
latent space) is shaped by a **triplet loss**: digits of one class are pulled together, digits of other classes
pushed at least a margin away. The softmax head that makes the prediction learns from those features through a
**stop-gradient**, so only the triplet loss shapes the embedding. Their argument: with tight, well-separated clusters
an attacker has to travel a long way to reach another class, further than the budget allows. Their Table 1 reports
{paper['Ours']['PGD']}% accuracy under PGD at eps = {table1.EPS}, where plain softmax falls to
{paper['Softmax']['PGD']}%.
""")

st.header("The attacks, and what eps means")
st.markdown(f"""
Each attack nudges every pixel in the direction that raises the model's loss, by at most **eps**:

- **FGSM**: one step of size eps along the sign of the gradient.
- **BIM**: FGSM in small steps (the paper's: ten of eps/10), never leaving the eps-box around the original.
- **MIM**: BIM with momentum: each step follows a running sum of the normalised gradients, which carries it over
  flat spots.
- **PGD**: BIM from a random point in the eps-box, with more, smaller steps (40 of 0.01, Madry et al.'s setting):
  the standard strong attack.

Pixels run from 0 (black) to 1 (white). At eps = {table1.EPS} each pixel may brighten or darken by up to
{table1.EPS} ({table1.EPS * 255:g} of 255 grey levels), all at once; a person still reads the digit. At eps =
0.5 every digit can be turned into flat grey, so an honest evaluation reaches 0% there.

The pages offer two **presets**: *paper*, the attacks as the paper states them, and *strong*, a more careful
evaluation (a margin loss that does not saturate, 100 steps, PGD with 5 restarts). *Strong* is strong next to the
paper's settings, not the strongest: the **converged** evaluation on the Table 1 page (AutoAttack's APGD and Square,
an attack on the latent clusters and a transfer attack, then rounds of restarts that double the effort until two
doublings in a row find almost nothing more) finds lower numbers still, and the lowest number is the one to
believe. The **gradient-masking lens** shows why a weak attack stalls.

Beyond the paper, the sidebar switches the **dataset** to Fashion-MNIST (ten kinds of clothing, harder than
digits), and **adds your own model**: the explorer's ConvNet in safetensors, or any classifier exported to ONNX,
checked and measured, then attacked and shown like the others. On Fashion-MNIST the same two recipes reach
{100 * fashion_converged['fashion-softmax']['clean_accuracy']:.1f}% (softmax) and
{100 * fashion_converged['fashion-triplet']['clean_accuracy']:.1f}% (triplet) clean, and keep
{100 * fashion_converged['fashion-softmax']['robust_accuracy']:.1f}% and
{100 * fashion_converged['fashion-triplet']['robust_accuracy']:.1f}% at eps = {table1.EPS}; the triplet loss again
tightens the clusters (ratio {fashion_geometry['fashion-triplet']['intra_inter_ratio']:.2f} against
{fashion_geometry['fashion-softmax']['intra_inter_ratio']:.2f}) in a space shrunk from
{fashion_geometry['fashion-softmax']['inter_class_distance']:.0f} to
{fashion_geometry['fashion-triplet']['inter_class_distance']:.0f} between classes.
""")

st.header("A five-minute classroom script")
st.markdown("Keep **softmax** and **triplet** selected in the sidebar, then go through the pages in order. To have "
            "the class follow on their own laptops, open **Share this view** under any view and send the link: it "
            "opens the same page, digit, models, attack and eps for everyone, and one server computes each attack "
            "once for the whole class.")
st.page_link("app_pages/attack.py", label="1. Attack a digit (1 minute)", icon=":material/my_location:")
st.markdown("""
Leave the digit class at 7 and the attack at **FGSM**, and drag eps from 0 to 0.3. *Notice:* the triplet model,
the paper's defence, gives this 7 up (it reads a 3) while softmax still sees a 7. Now choose **PGD**: both models
fall. The perturbation picture is faint noise spread over the whole image, not a drawn stroke.
""")
st.page_link("app_pages/latent.py", label="2. Latent space, Figure 2 (1 minute)", icon=":material/scatter_plot:")
st.markdown(f"""
The paper's Figure 2: the embedding seen in two dimensions. *Notice:* the triplet clusters really are tighter
relative to the distance between classes (ratio {geometry['triplet']['intra_inter_ratio']:.2f} against softmax's
{geometry['softmax']['intra_inter_ratio']:.2f}), as the paper promised. But the whole space has shrunk: classes lie
{geometry['triplet']['inter_class_distance']:.0f} apart on average, against
{geometry['softmax']['inter_class_distance']:.0f} for softmax, so an attacker has less far to go, not more.
""")
st.page_link("app_pages/budget.py", label="3. Epsilon budget (1 minute)", icon=":material/show_chart:")
st.markdown(f"""
Accuracy against eps, one curve per attack. *Notice:* under the paper preset the triplet model's iterative curves
fall close to 0% well before eps = {table1.EPS}, while softmax's stay far above. Switch the preset to **strong**:
softmax's curves fall too: the paper preset's cross-entropy saturates on this confident model, the strong
preset's margin loss does not. In the histogram, half
the digits flip by eps = {median_flip('triplet')} for triplet and {median_flip('softmax')} for softmax (strong
preset).
""")
st.page_link("app_pages/table1.py", label="4. Table 1 (1 minute)", icon=":material/table_chart:")
st.markdown(f"""
The paper's rows beside ours. *Notice:* the paper's PGD column sits far above its BIM column ({paper['Ours']['PGD']}%
against {paper['Ours']['BIM']}% for its triplet model), yet PGD is BIM with a random start and more steps, so it
should do at least as well. The table below it shows PGD settings that produce that pattern on our models.
""")
st.page_link("app_pages/gallery.py", label="5. Gallery, Figure 1 (1 minute)", icon=":material/grid_view:")
st.markdown("""
The paper's Figure 1. Choose **triplet** at eps 0.3: BIM, MIM and PGD fool every digit. Choose **triplet-pgd**:
all ten survive the paper's attacks at eps 0.3; move eps to 0.4 and some fall. Tick *Only fooled digits*. *Notice:*
to a person every fooled digit still looks like its label.
""")

st.header("What our reproduction found")
st.markdown(f"""
We trained our own models with the paper's four recipes and the control it lacks, and attacked
{ours['paper']['digits']:,} test digits at eps = {table1.EPS} (Table 1 page).

- **The triplet loss alone gives no robustness.** Our triplet model keeps {accuracy('paper', 'Ours', 'PGD')} under
  PGD with the paper's own settings and {accuracy('strong', 'Ours', 'PGD')} under the strong preset, where the paper
  reports {paper['Ours']['PGD']}%. Under the paper preset it is *less* robust than plain softmax: FGSM leaves
  {accuracy('paper', 'Ours', 'FGSM')} standing against softmax's {accuracy('paper', 'Softmax', 'FGSM')}.
- **The paper's PGD column is what an attack that stops short gives.** PGD with 10 steps of 0.01 (it can travel
  only 0.1 of the 0.3 allowed) leaves {pgd_when(SHORT_PGD, 'Ours')} of digits standing on our triplet model; with
  steps of 0.001, {pgd_when(TINY_STEP_PGD, 'Ours')}, while its BIM accuracy is {accuracy('paper', 'Ours', 'BIM')}.
  We cannot know which slip the paper made, only that this pattern is the signature of a weak attack.
- **PGD training is the only real robustness here.** The triplet model trained on PGD examples keeps
  {accuracy('paper', 'Ours_PGD', 'PGD')} under the paper's PGD and {accuracy('strong', 'Ours_PGD', 'PGD')} under the
  strong one, below the paper's {paper['Ours_PGD']['PGD']}%. Even the strong attack has not converged on it: on
  the first {table['paper_pattern']['digits']:,} digits, {MORE_STEPS} instead of {strong_steps} take it from
  {100 * checks['as preset']:.1f}% to {100 * checks[MORE_STEPS]:.1f}%, so its true robust accuracy is lower still.
  The converged evaluation (Table 1 page) leaves {100 * converged['robust_accuracy']:.2f}% of all
  {converged['digits']:,} digits, {CONVERGED_VERDICT}. Those that survive barely do: at eps =
  {converged['beyond']['eps'][1]}, one APGD-CE run breaks {edge_share(converged)} of them, against
  {edge_share(control_converged)} of the control's{EDGE_CONSEQUENCE}.
  It is also the only model that raises the budget an attacker needs: half its digits need eps =
  {median_flip('triplet-pgd')} or more to flip, against {median_flip('softmax')} for softmax.
- **The triplet loss takes robustness away.** The paper never separates its two ingredients, so we trained the
  control: the PGD-trained triplet model's recipe with the triplet loss taken out (`softmax-pgd`). It keeps
  {accuracy('paper', 'Softmax_PGD', 'PGD')} under the paper's PGD and {accuracy('strong', 'Softmax_PGD', 'PGD')} under
  the strong one, against {accuracy('paper', 'Ours_PGD', 'PGD')} and {accuracy('strong', 'Ours_PGD', 'PGD')} with the
  triplet loss, at a higher clean accuracy ({accuracy('paper', 'Softmax_PGD', 'No-Attack')} against
  {accuracy('paper', 'Ours_PGD', 'No-Attack')}). The converged evaluation leaves it
  {100 * control_converged['robust_accuracy']:.2f}% ({CONTROL_VERDICT}) against
  {100 * converged['robust_accuracy']:.2f}%. The robustness is adversarial training's. What the triplet loss
  changes is the geometry: tighter clusters relative to their spread (ratio
  {geometry['triplet-pgd']['intra_inter_ratio']:.2f} against {geometry['softmax-pgd']['intra_inter_ratio']:.2f}),
  in a space {geometry['softmax-pgd']['inter_class_distance'] / geometry['triplet-pgd']['inter_class_distance']:.0f}
  times narrower, where every cluster sits closer to its neighbours.
- **FGSM training defeats FGSM only**: {accuracy('paper', 'Ours_FGSM', 'FGSM')} under FGSM, {accuracy('paper',
  'Ours_FGSM', 'PGD')} under PGD.
- **Softmax's paper-preset numbers flatter it**: its confident cross-entropy saturates, so the paper's PGD leaves
  {accuracy('paper', 'Softmax', 'PGD')} standing; the strong preset's margin loss leaves
  {accuracy('strong', 'Softmax', 'PGD')}.
""")


def compare_the_pgd_trained_models() -> None:
    """A callback, so the sidebar's pair may still change: the next run opens the latent page with both."""
    st.session_state["dataset"] = "mnist"
    st.session_state["model_pair"] = ["softmax-pgd", "triplet-pgd"]
    st.session_state["open_latent_page"] = True


if st.session_state.pop("open_latent_page", False):
    st.switch_page("app_pages/latent.py")
st.button("Compare the two PGD-trained models' latent spaces", icon=":material/scatter_plot:",
          on_click=compare_the_pgd_trained_models, key="compare_pgd_models")
st.caption(f"Numbers from `results/table1.json` ({results.how_made(table)}), `results/sweeps.json` and "
           "`results/latent.json`. Re-run them with `explorer evaluate --table1 --sweeps --latent`; add "
           "`--models NAME` to re-run one model and keep the others' rows.")
