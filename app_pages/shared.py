"""What every page shares, loaded once per server and read-only: the models, the bundled test digits, and the
attacks of single digits over the eps grid (page 1 computes them, the latent page reuses them)."""

import contextlib
import threading

import numpy as np
import streamlit as st
import torch

from explorer import data, evaluate, models, projection, sweeps

EPS_GRID = np.array(sweeps.EPS_GRID)
# Attacks run one at a time, whichever session asks. PyTorch already spreads each call over every core; several
# sessions' calls at once oversubscribe a laptop's few cores, and everyone waits longer than they would in turn.
ATTACKING = threading.Lock()


@st.cache_resource(show_spinner="Loading the model…")
def load_model(name: str) -> models.ConvNet:
    """A checkpoint of the checkpoint folder, by name. Never a path: the app offers only what that folder holds."""
    if name not in models.available():
        raise models.CheckpointError(f"{name!r} is not a checkpoint in {models.checkpoint_dir()}")
    return models.load(name)


def usable(names: list[str]) -> list[str]:
    """The names whose checkpoints load. Each one that does not gets a message saying why, never a traceback."""
    loaded = []
    for name in names:
        try:
            load_model(name)
        except models.CheckpointError as error:
            st.error(f"**{name}** cannot be used: {error}", icon=":material/error:")
        else:
            loaded.append(name)
    return loaded


def chosen_models() -> list[str]:
    """The sidebar's one or two models; without any, the page says so and stops."""
    pair = st.session_state.get("models") or []
    if not pair:
        st.info("Pick one or two models in the sidebar.")
        st.stop()
    return pair


@st.cache_resource
def sample() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 2,000 bundled test digits: uint8 images, labels, test-set indices."""
    return data.load_sample()


@st.cache_data(max_entries=64, show_spinner="Attacking the whole eps range once…")
def response(model_name: str, image: np.ndarray, label: int, kind: str, params: dict) -> evaluate.EpsResponse:
    """One digit attacked at every eps of EPS_GRID. Keyed on the 28x28 array itself (hashing 784 floats is cheap),
    so test digits, uploads and drawings share it."""
    model = load_model(model_name)
    with ATTACKING:
        return evaluate.eps_response(model, torch.from_numpy(image)[None], label, kind, EPS_GRID, **params)


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
