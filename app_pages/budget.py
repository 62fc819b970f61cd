"""Page 3: how large a perturbation each model needs, from the committed sweeps."""

import streamlit as st

from app_pages.shared import ATTACKING, chosen_models, class_names, item, load_model, preset_radio, sample
from explorer.evaluation import results, sweeps
from explorer.plots import charts, figures

FLIPS_SHOWN = 8


@st.cache_data
def committed_sweeps() -> dict:
    return results.committed("sweeps")


def live_sweep(pair: tuple[str, ...], preset: str, count: int) -> dict:
    """`sweeps.live` on the bundled images, with a progress bar."""
    bar = st.progress(0.0, text="Starting…")
    images, labels, indices = sample()
    live = sweeps.live({name: load_model(name) for name in pair}, images, labels, indices, preset, count,
                       examples=FLIPS_SHOWN, class_names=class_names(),
                       on_stage=lambda stage, done: bar.progress(done, text=stage), turn=ATTACKING.turn)
    bar.empty()
    return live


st.title("Epsilon budget")
ITEM = item()
pair = chosen_models()
committed = committed_sweeps()
preset = preset_radio("Attack preset", "budget_preset")
swept = [name for name in pair if name in committed["accuracy"]]
if unswept := [name for name in pair if name not in committed["accuracy"]]:
    st.info(f"No committed sweep for {', '.join(unswept)} yet: `explorer evaluate --sweeps --models "
            f"{' '.join(unswept)}` makes one, or run it live below.")
if swept:
    st.plotly_chart(charts.sweep_chart(committed, swept, preset), key="sweep_chart")
st.markdown(
    f"Each curve is one attack. An honest evaluation's curves fall as eps grows, reach 0% where every {ITEM} can "
    "be made grey (eps 0.5), and the iterative attacks (BIM, MIM, PGD) sit below FGSM. Compare the two presets: "
    f"where the paper preset leaves {ITEM}s standing and the strong one does not, the attack, not the model, "
    "made the difference.")
st.subheader(f"The smallest eps that flips each {ITEM}")
if swept:  # the committed sweeps are of the paper's models, on MNIST
    st.plotly_chart(charts.flip_histogram(committed, swept, preset), key="flip_histogram")
    st.caption(f"From `results/sweeps.json`: the first {committed['digits']:,} test digits, eps on a "
               f"{committed['eps'][1]:.2f} grid, any of the four attacks of the preset. Re-run it with "
               "`explorer evaluate --sweeps`.")

st.subheader("Run it live")
st.markdown(f"The curves above are committed results. Re-run the sweep here on a few {ITEM}s of the bundled sample "
            f"(a small batch: PGD at 26 eps values is the slow part), then look at each {ITEM} at the smallest eps "
            "that flips it: is its true class really in question?")
live_columns = st.columns([1, 3])
count = live_columns[0].number_input(f"{ITEM.capitalize()}s", 5, 100, 20, 5, key="live_digits")
if live_columns[1].button("Run the sweep", key="live_run", type="primary"):
    st.session_state["live_sweep"] = live_sweep(tuple(pair), preset, int(count))
if (live := st.session_state.get("live_sweep")) and live["models"] == list(pair) and live["preset"] == preset:
    st.plotly_chart(charts.sweep_chart(live, pair, preset), key="live_chart")
    st.caption(f"{live['digits']} {ITEM}s, {preset} preset, computed just now on this machine.")
    for name in pair:
        st.markdown(f"**{name}**: each {ITEM} at the smallest eps where PGD flips it, and what it is taken for")
        tiles = live["flips"][name]
        if not tiles:
            st.info(f"PGD flips none of these {ITEM}s up to eps 0.5.")
        for column, (image, caption) in zip(st.columns(max(len(tiles), 1)), tiles, strict=False):
            column.image(figures.digit_image(image, 3), caption=caption)
