"""What every page shares, loaded once per server and read-only: the models, the bundled test digits, and the
attacks of single digits over the eps grid (page 1 computes them, the latent page reuses them)."""

import contextlib
import threading

import numpy as np
import streamlit as st
import torch

from explorer import data, evaluate, models, projection, sweeps

EPS_GRID = np.array(sweeps.EPS_GRID)


@st.cache_resource(show_spinner="Loading the model…")
def load_model(name: str) -> models.ConvNet:
    return models.load(name)


@st.cache_resource
def sample() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 2,000 bundled test digits: uint8 images, labels, test-set indices."""
    return data.load_sample()


@st.cache_data(max_entries=64, show_spinner="Attacking the whole eps range once…")
def response(model_name: str, image: np.ndarray, label: int, kind: str, params: dict) -> evaluate.EpsResponse:
    """One digit attacked at every eps of EPS_GRID. Keyed on the 28x28 array itself (hashing 784 floats is cheap),
    so test digits, uploads and drawings share it."""
    return evaluate.eps_response(load_model(model_name), torch.from_numpy(image)[None], label, kind, EPS_GRID,
                                 **params)


@st.cache_resource
def warm_up_umap() -> None:
    """Once per server, if a checkpoint has no stored UMAP layout: compile UMAP's kernels in a background thread,
    so that checkpoint's first UMAP view takes seconds instead of half a minute."""
    weights = []
    for name in models.available():
        with contextlib.suppress(models.CheckpointError):  # a broken checkpoint says so when it is picked
            weights.append(models.read_card(models.resolve(name))["weights_sha256"])
    if not all(projection.has_layout(sha, sample()[0]) for sha in weights):
        threading.Thread(target=projection.warm_up, name="umap-warm-up", daemon=True).start()
