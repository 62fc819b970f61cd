"""Page 1: attack one digit and compare the two models side by side."""

import numpy as np
import streamlit as st
import torch

from explorer import attacks, data, evaluate, figures, models, sweeps

EPS_GRID = np.array(sweeps.EPS_GRID)


@st.cache_resource
def load_model(name: str) -> models.ConvNet:
    return models.load(name)


@st.cache_resource
def sample() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return data.load_sample()


@st.cache_data(max_entries=64, show_spinner="Attacking the whole eps range once…")
def response(model_name: str, position: int, kind: str) -> evaluate.EpsResponse:
    images, labels, _ = sample()
    image = data.to_tensor(images[position : position + 1])[0]
    return evaluate.eps_response(load_model(model_name), image, int(labels[position]), kind, EPS_GRID)


st.title("Attack a digit")
images, labels, indices = sample()
pair = st.session_state.get("models") or []
if not pair:
    st.info("Pick one or two models in the sidebar.")
    st.stop()

controls = st.columns([1, 1, 2])
digit_class = controls[0].selectbox("Digit class", list(range(10)), index=7)
of_class = np.flatnonzero(labels == digit_class)
choice = controls[1].number_input("Which one", 0, len(of_class) - 1, 0, key="which")
position = int(of_class[choice])
kind = controls[2].radio("Attack", attacks.KINDS, horizontal=True, format_func=str.upper, key="kind")
st.caption(f"Test digit #{int(indices[position])} (true class {digit_class}); the paper's preset for "
           f"{kind.upper()}: {attacks.params_for(kind)}")


@st.fragment
def compare() -> None:
    eps = st.slider("Perturbation budget eps (L-inf, pixels in [0, 1])", 0.0, 0.5, 0.3, 0.02, key="eps")
    step = int(np.argmin(np.abs(EPS_GRID - eps)))
    columns = st.columns(len(pair))
    for column, name in zip(columns, pair, strict=True):
        result = response(name, position, kind)
        clean, adversarial = result.adversarial[0], result.adversarial[step]
        predicted = int(result.predictions[step])
        with column:
            st.subheader(name)
            verdict = f"still {predicted}" if predicted == result.label else f"now {predicted}"
            (st.success if predicted == result.label else st.error)(f"**{verdict}** at eps = {eps:.2f}")
            pictures = st.columns(3)
            pictures[0].image(figures.digit_image(clean, 5), caption="clean")
            pictures[1].image(figures.digit_image(adversarial, 5), caption="adversarial")
            pictures[2].image(figures.perturbation_image(torch.from_numpy(adversarial - clean), max(eps, 1e-6), 5),
                              caption="perturbation (red +, blue -)")
            flip = result.smallest_flipping_eps
            st.write(f"Smallest eps that flips it: **{flip:.2f}**" if flip is not None
                     else "No eps up to 0.5 flips it.")
            st.bar_chart({"clean": result.probabilities[0], "adversarial": result.probabilities[step]},
                         stack=False, height=200)
            st.download_button("Download adversarial PNG", figures.png_bytes(figures.digit_image(adversarial)),
                               file_name=f"{name}-{kind}-eps{eps:.2f}.png", mime="image/png", key=f"png-{name}")


compare()
