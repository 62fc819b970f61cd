"""Page 2: the latent space in 2-D, and attacked digits migrating between class clusters (the paper's Figure 2)."""

import dataclasses

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from app_pages.shared import (
    ATTACKING,
    EPS_GRID,
    chosen_models,
    class_legend,
    current_dataset,
    current_view,
    item,
    load_model,
    model_sample,
    response,
    sample,
    share_link,
    usable,
)
from explorer import attacks, data, latent, models
from explorer.latent import projection, trajectories
from explorer.plots import gallery
from explorer.plots.latent_figure import UNKNOWN, Panel, migration_figure, panel
from explorer.web import view

SAMPLE_CHOICES = {"page": "the digit from page 1", "per_class": "one digit of each class", "sample": "a random sample"}


@st.cache_resource(show_spinner="Embedding 2,000 test images…")
def reference_embeddings(model_name: str) -> np.ndarray:
    return latent.reference_embeddings(load_model(model_name), model_sample(model_name)[0])


@st.cache_resource(show_spinner="Fitting the 2-D view (UMAP: about 15 s the first time, then read from disk)…")
def fitted_projection(model_name: str, method: str) -> projection.Projection:
    return projection.fit(method, reference_embeddings(model_name), load_model(model_name).card["weights_sha256"],
                          model_sample(model_name)[0])


@st.cache_data(max_entries=32, show_spinner=False)
def migrated(model_name: str, images: np.ndarray, labels: np.ndarray, attack: attacks.Attack,
             eps_grid: tuple[float, ...]) -> trajectories.Trajectories:
    model = load_model(model_name)
    with ATTACKING.turn():
        return trajectories.migrate(model, torch.from_numpy(images)[:, None], torch.from_numpy(labels), attack,
                                    eps_grid)


def page_digit(model_name: str, digit: view.Digit, attack: attacks.Attack) -> trajectories.Trajectories:
    """Page 1's digit, attacked exactly as page 1 showed it: its cached attack over the eps grid, embedded."""
    result = response(model_name, digit, attack)
    return trajectories.follow(load_model(model_name), result.eps, torch.from_numpy(result.adversarial)[:, None, None],
                               np.array([digit.label]))


@st.cache_resource(max_entries=16, show_spinner=False)
def latent_view(pair: tuple[str, ...], method: str, from_page: bool, images: np.ndarray, labels: np.ndarray,
                indices: np.ndarray, attack: attacks.Attack, start_step: int,
                paper_style: bool) -> tuple[go.Figure, list[Panel]]:
    """The figure and its panels, built once per choice and shared read-only: building it takes a quarter second."""
    panels = []
    for name in pair:
        moved = (page_digit(name, view.Digit(images[0], int(labels[0]), ""), attack) if from_page
                 else migrated(name, images, labels, attack, trajectories.EPS_FRAMES))
        _, reference_labels, reference_indices = model_sample(name)
        spec = data.DATASETS[models.dataset_of(load_model(name).card)]
        panels.append(panel(name, fitted_projection(name, method), reference_labels, reference_indices, moved,
                            indices, spec.class_names, spec.item))
    return migration_figure(panels, start_step, paper_style), panels


def chosen_digits(choice: str, count: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Float images (N, 28, 28), labels and test-set indices (UNKNOWN for an upload or a drawing)."""
    images, labels, indices = sample()
    if choice == "page":
        digit = current_view().digit
        index = digit.test_index if digit.test_index is not None else data.bundled_index(digit.image, current_dataset())
        return digit.image[None], np.array([digit.label]), np.array([UNKNOWN if index is None else index])
    if choice == "per_class":
        rng = np.random.default_rng(seed)
        positions = np.array([rng.choice(np.flatnonzero(labels == c)) for c in range(10)])
    else:
        positions = gallery.pick_digits(labels, count, seed)
    return images[positions] / np.float32(255), labels[positions], indices[positions]


st.title("Latent space (Figure 2)")
ITEM = item()
st.markdown(f"Each faint dot is one of 2,000 clean test {ITEM}s, placed by its 64-d embedding (the layer the triplet "
            f"loss shapes) and coloured by class. The outlined {ITEM}s are attacked at growing eps: press **Play**, "
            "or drag the eps slider under the chart, and watch them leave their cluster for another one.")
pair = chosen_models()

paper_figure = st.toggle("Paper figure", key="paper_figure",
                         help=f"Lay it out like the paper's Figure 2: the triplet model alone, one {ITEM} of each "
                              "class, PCA, the key inside the plot, starting at eps 0.3.")
controls = st.columns([1, 2, 1])
method = controls[0].radio("2-D view", projection.METHODS, format_func=str.upper, horizontal=True,
                           key="projection", disabled=paper_figure,
                           help="PCA: a linear map, distances kept as far as two axes can. UMAP: keeps each "
                                f"{ITEM}'s neighbours, so clusters separate clearly; attacked {ITEM}s are placed by "
                                "their nearest clean neighbours in 64-d.")
choice = controls[1].radio(f"{ITEM.capitalize()}s to attack", list(SAMPLE_CHOICES),
                           format_func=lambda key: SAMPLE_CHOICES[key].replace("digit", ITEM),
                           horizontal=True, key="latent_digits", disabled=paper_figure)
count = controls[2].number_input("How many", 1, 100, 20, key="latent_count", disabled=choice != "sample",
                                 help=f"Every {ITEM} is attacked at 11 eps values; PGD-40 on 20 {ITEM}s takes "
                                      "about 10 s per model on a laptop CPU.")
shown = current_view().attack
kind = st.radio("Attack", attacks.KINDS, index=attacks.KINDS.index(shown.kind), format_func=str.upper,
                horizontal=True, key="latent_kind", help="Page 1's attack, with its parameters; another kind runs "
                                                        "with the same preset's.")
attack = shown if kind == shown.kind else attacks.Attack.of(kind, shown.preset)
if paper_figure:
    method, choice = "pca", "per_class"
    paper_model = data.DATASETS[current_dataset()].checkpoint_prefix + "triplet"
    pair = (usable([paper_model]) if paper_model in models.available() else []) or pair[:1]

images, labels, indices = chosen_digits(choice, int(count), seed=0)
# Page 1's digit reuses page 1's attack of it, on page 1's grid, so the two pages always agree.
eps_grid = tuple(EPS_GRID) if choice == "page" else trajectories.EPS_FRAMES
at_paper_eps = int(np.argmin(np.abs(np.array(eps_grid) - 0.3)))
with st.spinner(f"Attacking {len(labels)} {ITEM}(s) at {len(eps_grid)} eps values with "
                f"{kind.upper()} for each model…"):
    figure, panels = latent_view(tuple(pair), method, choice == "page", images, labels, indices, attack,
                                 at_paper_eps if paper_figure else 0, paper_figure)
event = st.plotly_chart(figure, key="latent_chart", on_select="rerun", selection_mode="points")
clicked = [int(point["customdata"][0]) for point in event.selection.points
           if point.get("customdata") and int(point["customdata"][0]) != UNKNOWN]
if clicked:
    st.session_state["open_test_index"] = clicked[0]
    st.switch_page("app_pages/attack.py")

summary = [f"**{panel.title}**: {int((panel.predictions[at_paper_eps] != panel.labels).sum())} of {len(labels)} "
           f"taken for another class at eps 0.30" for panel in panels]
st.markdown(" · ".join(summary))
share_link(dataclasses.replace(current_view(), models=tuple(pair), attack=attack, projection=method)
           .link(projection=True, digit=choice == "page"))
st.caption(f"Click any {ITEM} to open it on page 1. The axes stay fixed while the {ITEM}s move, so a long path "
           f"means a large move in the latent space. A {ITEM} sitting between clusters in 2-D may still be firmly in "
           f"one cluster in 64-d: trust the colour (the class the model takes it for). Attack: {kind.upper()}, "
           f"{attack.params}. {class_legend()}")
