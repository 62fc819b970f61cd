"""What every page shares, loaded once per server and read-only: the models, the bundled test digits, and the
attacks of single digits over the eps grid (page 1 computes them, the latent page reuses them)."""

import contextlib
import dataclasses
import hashlib
import json
import threading
from urllib.parse import urlencode

import numpy as np
import streamlit as st
import torch

from explorer import attacks, data, models
from explorer.evaluation import evaluate, sweeps
from explorer.latent import projection
from explorer.web import links, view
from explorer.web.shared_results import SharedResults
from explorer.web.turns import FIRST_LOOK, FULL, Turns
from explorer.web.view import Digit, View

EPS_GRID = np.array(sweeps.EPS_GRID)
# Attacks run one at a time, whichever session asks, the first looks at a new digit first (explorer.turns).
ATTACKING = Turns()


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


def current_dataset() -> str:
    """The sidebar's dataset: every page shows its images and models."""
    return st.session_state.get("dataset", "mnist")


def class_names() -> tuple[str, ...]:
    return data.DATASETS[current_dataset()].class_names


def item() -> str:
    """What one image of the sidebar's dataset is called: "digit" or "image"."""
    return data.DATASETS[current_dataset()].item


def class_legend() -> str:
    """Where a picture labels classes by number: what the numbers mean (nothing for MNIST, whose classes are)."""
    names = class_names()
    if names == data.MNIST.class_names:
        return ""
    return "Classes: " + ", ".join(f"{c} {name}" for c, name in enumerate(names)) + "."


def models_of_dataset() -> list[str]:
    """The checkpoints of the sidebar's dataset."""
    return [name for name, of in models.catalogue().items() if of == current_dataset()]


@st.cache_resource
def bundled(dataset: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A dataset's 2,000 bundled test images: uint8 images, labels, test-set indices."""
    return data.load_sample(dataset)


def sample() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sidebar dataset's bundled test images."""
    return bundled(current_dataset())


def model_sample(model_name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The bundled test images of the dataset this checkpoint learned."""
    return bundled(models.dataset_of(load_model(model_name).card))


@st.cache_resource
def shared_results() -> SharedResults[evaluate.EpsResponse]:
    """Every session's attacks of single digits, one store per server: what one student computed, the class reads."""
    return SharedResults(max_entries=512)


def response_key(model_name: str, digit: Digit, attack: attacks.Attack, eps: tuple[float, ...]) -> tuple:
    """Keyed on the 28x28 array itself, so test digits, uploads and drawings share it, and on what the attack runs
    (whichever preset it started from)."""
    return (model_name, hashlib.sha1(digit.image.tobytes()).hexdigest(), digit.label, attack.kind,
            json.dumps(dataclasses.asdict(attack.params), sort_keys=True), eps)


def response(model_name: str, digit: Digit, attack: attacks.Attack,
             eps: tuple[float, ...] = tuple(EPS_GRID)) -> evaluate.EpsResponse:
    """One digit attacked at every eps of `eps` (the whole grid unless told), in one batched call; read-only."""
    def attacked() -> evaluate.EpsResponse:
        model = load_model(model_name)
        with ATTACKING.turn(FIRST_LOOK if len(eps) == 1 else FULL):
            return evaluate.eps_response(model, torch.from_numpy(digit.image)[None], digit.label, attack,
                                         np.array(eps))

    return shared_results().get(response_key(model_name, digit, attack, eps), attacked)


def has_response(model_name: str, digit: Digit, attack: attacks.Attack) -> bool:
    """Whether the whole grid of this digit is already computed, by any session."""
    return response_key(model_name, digit, attack, tuple(EPS_GRID)) in shared_results()


@st.cache_resource
def warm_up_umap() -> None:
    """Once per server, if a checkpoint has no stored UMAP layout: compile UMAP's kernels in a background thread,
    so that checkpoint's first UMAP view takes seconds instead of half a minute."""
    weights = []
    for name, dataset in models.catalogue().items():
        with contextlib.suppress(models.CheckpointError):  # a broken checkpoint says so when it is picked
            weights.append((models.read_card(models.resolve(name))["weights_sha256"], dataset))
    if not all(projection.has_layout(sha, bundled(dataset)[0]) for sha, dataset in weights):
        threading.Thread(target=projection.warm_up, name="umap-warm-up", daemon=True).start()


DEFAULT_RECIPES = ("softmax", "triplet")


def default_pair(dataset: str, catalogue: dict[str, str]) -> list[str]:
    """The baseline and the paper's method on this dataset, else its first two checkpoints."""
    names = [name for name, of in catalogue.items() if of == dataset]
    prefix = data.DATASETS[dataset].checkpoint_prefix
    return [prefix + recipe for recipe in DEFAULT_RECIPES if prefix + recipe in names] or names[:2]


def eps_slider(key: str, where=st, *, label: str = "Perturbation budget eps (L-inf, pixels in [0, 1])",
               smallest: float = 0.0, step: float = 0.02) -> float:
    """The eps budget, the same scale and default (the paper's 0.3) on every page; rounded, so the slider's float
    noise never makes a new cache entry."""
    return round(where.slider(label, smallest, 0.5, 0.3, step, key=key), 2)


def preset_radio(label: str, key: str, where=st, **options) -> str:
    """The attack preset, the same choice and explanation on every page."""
    return where.radio(label, list(attacks.PRESETS), horizontal=True, key=key, **options,
                       help="paper: the attacks as the paper states them; strong: margin loss, 100 steps, early "
                            "stop, PGD with 5 restarts (stronger than the paper's, weaker than the converged "
                            "evaluation on the Table 1 page)")


# What points into one dataset's bundled images, forgotten when the sidebar switches dataset.
DIGIT_KEYS = ("digit_class", "which", "test_index", "chosen_digit", "open_test_index")


def switch_dataset() -> None:
    """The sidebar's dataset changed (a callback, before the widgets exist): its default pair and a fresh digit."""
    st.session_state["model_pair"] = default_pair(current_dataset(), models.catalogue())
    for key in DIGIT_KEYS:
        st.session_state.pop(key, None)


def follow_link() -> None:
    """Once per session, before any widget exists: the view the URL names goes into the widgets' state, and each
    value that had to change is said at the top of the page (never a traceback)."""
    if "link_followed" in st.session_state:
        return
    st.session_state["link_followed"] = True
    catalogue = models.catalogue()
    link = links.read(st.query_params.to_dict(), available=catalogue,
                      bundled={name: bundled(name)[2] for name in data.DATASETS}, kinds=attacks.KINDS,
                      presets=list(attacks.PRESETS), eps_grid=EPS_GRID, projections=projection.METHODS)
    st.session_state["link_notices"] = link.notices
    st.session_state["dataset"] = link.dataset
    st.session_state["model_pair"] = link.models or default_pair(link.dataset, catalogue)
    images, labels, indices = sample()
    if link.digit is not None:
        st.session_state["open_test_index"] = link.digit
        position = int(np.flatnonzero(indices == link.digit)[0])
        st.session_state["chosen_digit"] = view.test_digit(images, labels, indices, position, item())
    if link.attack or link.preset or link.changes:
        chosen = attacks.Attack.of(link.attack or view.DEFAULT_KIND, link.preset or "paper", **link.changes)
        st.session_state["kind"], st.session_state["preset"] = chosen.kind, chosen.preset
        st.session_state["chosen_attack"] = chosen
    st.session_state["eps"] = view.DEFAULT_EPS if link.eps is None else link.eps
    if link.projection:
        st.session_state["projection"] = link.projection


def build_view() -> View:
    """This run's view, from what the user chose (or a link named), with the one set of defaults (explorer.web.view);
    app.py builds it before any page, every page reads it with `current_view`."""
    images, labels, indices = sample()
    built = View(dataset=current_dataset(), models=tuple(st.session_state.get("models") or ()),
                 digit=st.session_state.get("chosen_digit") or view.default_digit(images, labels, indices, item()),
                 attack=st.session_state.get("chosen_attack") or attacks.Attack.of(view.DEFAULT_KIND),
                 eps=float(st.session_state.get("eps", view.DEFAULT_EPS)),
                 projection=st.session_state.get("projection", view.DEFAULT_PROJECTION))
    st.session_state["view"] = built
    return built


def current_view() -> View:
    return st.session_state["view"]


def choose(digit: Digit, attack: attacks.Attack) -> View:
    """Page 1's digit and attack become the view every page shows."""
    st.session_state["chosen_digit"], st.session_state["chosen_attack"] = digit, attack
    st.session_state["view"] = dataclasses.replace(current_view(), digit=digit, attack=attack)
    return st.session_state["view"]


def show_link_notices() -> None:
    for notice in st.session_state.pop("link_notices", []):
        st.warning(notice, icon=":material/link_off:")


def share_link(query: dict[str, str]) -> None:
    """The URL follows the view on every run; the popover hands out the whole link, with a copy button."""
    st.query_params.from_dict(query)
    base = (st.context.url or "").split("?")[0]
    with st.popover("Share this view", icon=":material/link:"):
        st.caption(f"Anyone who opens this link sees this page, model pair, {item()}, attack (with every parameter "
                   "changed from its preset) and eps.")
        st.code(f"{base}?{urlencode(query)}", language=None, wrap_lines=True)
