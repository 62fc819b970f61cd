"""Page 3: how large a perturbation each model needs, from the committed sweeps."""

import streamlit as st

from explorer import charts, results


@st.cache_data
def committed_sweeps() -> dict:
    return results.committed("sweeps")


st.title("Epsilon budget")
pair = st.session_state.get("models") or []
if not pair:
    st.info("Pick one or two models in the sidebar.")
    st.stop()
sweeps = committed_sweeps()
preset = st.radio("Attack preset", ["paper", "strong"], horizontal=True, key="budget_preset",
                  help="paper: the attacks as the paper states them; strong: margin loss, 100 steps, restarts")
st.plotly_chart(charts.sweep_chart(sweeps, pair, preset), key="sweep_chart")
st.markdown(
    "Each curve is one attack. An honest evaluation's curves fall as eps grows, reach 0% where every digit can "
    "be made grey (eps 0.5), and the iterative attacks (BIM, MIM, PGD) sit below FGSM. Compare the two presets: "
    "where the paper preset leaves digits standing and the strong one does not, the attack, not the model, "
    "made the difference.")
st.subheader("The smallest eps that flips each digit")
st.plotly_chart(charts.flip_histogram(sweeps, pair, preset), key="flip_histogram")
st.caption(f"From `results/sweeps.json`: the first {sweeps['digits']:,} test digits, eps on a "
           f"{sweeps['eps'][1]:.2f} grid, any of the four attacks of the preset. Re-run it with "
           "`explorer evaluate --sweeps`.")
