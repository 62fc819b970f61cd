"""Page: the gradient-masking lens. The loss around one digit as an attacker sees it, and why a weak attack
stalls on a model where a strong one does not."""

import numpy as np
import streamlit as st
import torch

from app_pages.shared import ATTACKING, chosen_models, class_names, current_view, eps_slider, item, load_model
from explorer.evaluation import lens
from explorer.plots import charts

ATTACKS = {"PGD-40 (paper preset)": "pgd", "APGD-CE (100 iterations)": "apgd-ce"}


@st.cache_data(max_entries=32, show_spinner="Measuring the loss around the image…")
def surface(model_name: str, image: np.ndarray, label: int, eps: float) -> lens.Surface:
    with ATTACKING.turn():
        return lens.loss_surface(load_model(model_name), torch.from_numpy(image)[None], label, eps)


@st.cache_data(max_entries=32, show_spinner="Running the attacks…")
def curve(model_name: str, image: np.ndarray, label: int, eps: float, kind: str) -> np.ndarray:
    with ATTACKING.turn():
        return lens.margin_curve(load_model(model_name), torch.from_numpy(image)[None], label, kind, eps)


st.title("Gradient-masking lens")
ITEM = item()
st.markdown(
    f"A defence can look robust because its gradients point nowhere useful, not because no adversarial {ITEM} is "
    f"near. Left: the loss around one {ITEM} over the slice **x + a·sign(g) + b·r** (g the gradient, r a random sign "
    "direction; Tramèr et al. 2018). A smooth rise along a means the gradient shows the way; a flat plateau with a "
    "cliff further out means it hides it. White lines: where the verdict changes. Below: the margin at each step "
    f"of a weak and a strong attack (above 0 the {ITEM} is fooled).")
names = chosen_models()
digit = current_view().digit
eps = eps_slider("lens_eps", label="eps (the slice spans -eps..eps)", smallest=0.05, step=0.05)
st.caption(f"{digit.name} (true class {class_names()[digit.label]}); choose another {ITEM} on the first page.")
image, label = digit.image, digit.label
st.plotly_chart(charts.loss_surface_chart({name: surface(name, image, label, eps) for name in names}, label),
                key="lens_surface")
st.plotly_chart(charts.margin_curves_chart(
    {name: {title: curve(name, image, label, eps, kind) for title, kind in ATTACKS.items()} for name in names}),
    key="lens_curves")
