"""Page 1: attack one digit (from the test set, an upload or a drawing) and compare the two models side by side."""

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from app_pages.shared import (
    ATTACKING,
    EPS_GRID,
    chosen_models,
    class_names,
    current_dataset,
    has_response,
    load_model,
    preset_radio,
    response,
    sample,
    share_link,
)
from explorer import attacks, data
from explorer.data import uploads
from explorer.plots import figures
from explorer.web import eps_view, links

SOURCES = {"test": "Test set", "upload": "Upload a picture", "draw": "Draw"}
# The eps view draws in the browser: moving the slider never waits for the server (assets/eps_viewer.*).
EPS_VIEWER = st.components.v2.component(
    "explorer.eps_viewer", html="", js=(Path(__file__).parent.parent / "assets" / "eps_viewer.js").read_text(),
    css=(Path(__file__).parent.parent / "assets" / "eps_viewer.css").read_text())
UPLOAD_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff"]
STRIP = 10  # thumbnails in the strip
LOSS_NAMES = {
    "ce": "cross-entropy",
    "margin": "margin (best other logit minus the true one)",
    "ce-probabilities": "the double-softmax slip: cross-entropy on probabilities (masks gradients, a weak attack)",
    "dlr": "DLR (Croce and Hein: the margin divided by the spread of the top logits; never saturates)",
}


@st.cache_data(max_entries=64)
def clean_prediction(model_name: str, image: np.ndarray) -> int:
    with torch.no_grad():
        return int(load_model(model_name)(torch.from_numpy(image)[None, None]).argmax())


@st.cache_data(max_entries=16)
def prepared_upload(content: bytes) -> uploads.Prepared:
    return uploads.prepare_upload(content)


def select(position: int) -> None:
    """Point every test-set widget at one digit of the sample. Runs in callbacks and before the widgets exist."""
    _, labels, indices = sample()
    label = int(labels[position])
    st.session_state["digit_class"] = label
    st.session_state["which"] = int((labels[:position] == label).sum())
    st.session_state["test_index"] = int(indices[position])


def select_by_class() -> None:
    _, labels, _ = sample()
    of_class = np.flatnonzero(labels == st.session_state["digit_class"])
    select(int(of_class[min(st.session_state["which"], len(of_class) - 1)]))


def select_by_index() -> None:
    _, _, indices = sample()
    select(int(np.flatnonzero(indices == st.session_state["test_index"])[0]))


def select_at_random() -> None:
    select(int(np.random.default_rng().integers(len(sample()[1]))))


def from_test_set() -> tuple[np.ndarray, int, str]:
    """The digit chosen from the bundled sample: by class and rank, by test index, at random or from the strip."""
    images, labels, indices = sample()
    controls = st.columns(4, vertical_alignment="bottom")
    controls[0].selectbox("Class", range(10), key="digit_class", on_change=select_by_class, persist_state="session",
                          format_func=class_names().__getitem__)
    of_class = np.flatnonzero(labels == st.session_state["digit_class"])
    controls[1].number_input("Which one of the class", 0, len(of_class) - 1, key="which", on_change=select_by_class,
                             persist_state="session")
    controls[2].selectbox(f"{data.DATASETS[current_dataset()].title} test index", indices.tolist(), key="test_index",
                          on_change=select_by_index,
                          format_func=lambda i: f"#{i}", persist_state="session",
                          help=f"Any of the {len(indices):,} test images bundled with the app (type to search)")
    controls[3].button("Random digit", icon=":material/casino:", on_click=select_at_random)
    which = st.session_state["which"]
    position = int(of_class[which])
    start = which // STRIP * STRIP
    strip = st.columns(STRIP)
    for column, candidate in zip(strip, of_class[start:start + STRIP], strict=False):
        column.image(figures.digit_image(images[candidate] / 255, 2))
        column.button(f"#{indices[candidate]}", key=f"thumb-{candidate}", on_click=select, args=(int(candidate),),
                      type="primary" if candidate == position else "secondary", width="stretch")
    # The same pixels the CLI and the evaluations attack, to the last bit
    image = data.to_tensor(images[position : position + 1])[0, 0].numpy()
    return image, int(labels[position]), f"test digit #{indices[position]}"


def show_prepared(prepared: uploads.Prepared) -> None:
    """What the model will see, and what was done to the picture to make it look like an MNIST digit."""
    left, right = st.columns([1, 3])
    left.image(figures.digit_image(prepared.digit, 5), caption="as the models see it (28 x 28)")
    right.markdown("Made the MNIST way: greyscale, white ink on black, fitted in 20 x 20, centred by mass in "
                   "28 x 28.\n" + "".join(f"\n- {note}" for note in prepared.notes))


def from_upload() -> tuple[np.ndarray, str] | None:
    # The size cap is server.maxUploadSize in .streamlit/config.toml: the browser refuses bigger files unsent.
    upload = st.file_uploader("A picture of one digit", type=UPLOAD_TYPES, key="upload")
    if upload is None:
        st.info("Upload a photo, scan or screenshot of one handwritten digit.")
        return None
    try:
        prepared = prepared_upload(upload.getvalue())
    except uploads.UploadError as error:
        st.error(str(error))
        return None
    show_prepared(prepared)
    return prepared.digit, f"upload {upload.name}"


def from_drawing() -> tuple[np.ndarray, str] | None:
    # The component registers itself when imported, which only works inside a running page.
    from streamlit_drawable_canvas import st_canvas

    st.caption("Draw one digit, as large as the box, with the mouse or a finger; the toolbar undoes and clears.")
    canvas = st_canvas(stroke_width=18, stroke_color="#ffffff", background_color="#000000", width=280, height=280,
                       return_image_data=True, key="canvas")
    drawing = canvas.image_data
    if drawing is None:
        st.info("Nothing drawn yet.")
        return None
    try:
        prepared = uploads.prepare_drawing(drawing)
    except uploads.UploadError as error:
        st.info(str(error))
        return None
    show_prepared(prepared)
    return prepared.digit, "drawing"


def attack_params(kind: str, preset_name: str) -> attacks.AttackParams:
    """The advanced parameters, starting from the chosen preset. Keys carry the attack and preset so each keeps
    its own."""
    preset = attacks.params_for(kind, preset_name)
    single = kind == "fgsm"
    tag = f"{kind}-{preset_name}"
    with st.expander(f"Advanced attack parameters (start: the {preset_name} preset)"):
        columns = st.columns(3)
        steps = columns[0].number_input("Steps", 1, 100, preset.steps, key=f"steps-{tag}", disabled=single,
                                        help="FGSM is one step by definition")
        step_size = columns[1].number_input(
            "Step size", 0.001, 0.5, preset.step_size, 0.005, format="%.3f", key=f"step_size-{tag}",
            disabled=single, placeholder="eps / steps",
            help="Empty means eps / steps (FGSM: one step of eps). PGD's preset is Madry's 0.01.")
        restarts = columns[2].number_input(
            "Restarts", 1, 5, preset.restarts, key=f"restarts-{tag}",
            help="A restart runs only if the previous runs failed; without a random start it repeats the same run")
        random_start = columns[0].checkbox("Random start", preset.random_start, key=f"random_start-{tag}",
                                           help="Start at a uniform random point of the eps-ball (PGD)")
        decay = columns[1].number_input("Momentum decay", 0.0, 2.0, preset.decay, 0.1, key=f"decay-{tag}",
                                        disabled=kind != "mim", help="MIM's momentum; any other attack has none")
        loss = columns[2].selectbox("Loss", attacks.UNTARGETED_LOSSES, format_func=LOSS_NAMES.get, key=f"loss-{tag}",
                                    index=attacks.UNTARGETED_LOSSES.index(preset.loss))
    return attacks.params_for(kind, preset_name, steps=steps, step_size=step_size, random_start=random_start,
                              decay=decay, loss=loss, restarts=restarts)


def describe(kind: str, params: attacks.AttackParams) -> str:
    step = "eps / steps" if params.step_size is None else f"{params.step_size:g}"
    parts = [f"{params.steps} step{'s' * (params.steps > 1)} of {step}",
             "random start" if params.random_start else "no random start",
             f"momentum decay {params.decay:g}" if params.decay else "",
             f"loss {params.loss}",
             f"{params.restarts} restarts" if params.restarts > 1 else ""]
    return f"{kind.upper()}: " + ", ".join(part for part in parts if part) + "."


st.title("Attack a digit")
images, labels, indices = sample()
pair = chosen_models()

# Another page asks for a test digit by setting this key before switching here.
if (opened := st.session_state.pop("open_test_index", None)) is not None:
    matches = np.flatnonzero(indices == opened)
    if len(matches):
        st.session_state["source"] = "test"
        select(int(matches[0]))
    else:
        st.warning(f"Test digit #{opened} is not among the {len(indices):,} bundled with the app.")
if "digit_class" not in st.session_state:
    select(int(np.flatnonzero(labels == 7)[0]))

source = st.radio("Digit from", SOURCES, format_func=SOURCES.get, horizontal=True, key="source",
                  persist_state="session")
if source == "test":
    image, label, name = from_test_set()
else:
    picked = from_upload() if source == "upload" else from_drawing()
    if picked is None:
        st.stop()
    image, name = picked
    # A picture has no label: ask, suggesting what the first model sees. The key follows the picture, so a new
    # one gets a new suggestion.
    digest = hashlib.sha1(image.tobytes()).hexdigest()[:12]
    label = st.columns(4)[0].selectbox("Its true class", range(10), index=clean_prediction(pair[0], image),
                                       format_func=class_names().__getitem__,
                                       key=f"label-{digest}", help=f"Suggested: what {pair[0]} reads before any attack")

choices = st.columns([3, 2])
kind = choices[0].radio("Attack", attacks.KINDS, horizontal=True, format_func=str.upper, key="kind",
                        persist_state="session")
preset = preset_radio("Preset", "preset", where=choices[1], persist_state="session")
chosen = attack_params(kind, preset)
params = dataclasses.asdict(chosen)
st.caption(f"{name}, true class {class_names()[label]}. {describe(kind, chosen)}")
st.session_state["chosen_digit"] = {"image": image, "label": label, "name": name}
st.session_state["chosen_attack"] = {"kind": kind, "preset": preset, "params": params}
linked_digit = int(st.session_state["test_index"]) if source == "test" else None


def remember_eps() -> None:
    st.session_state["eps"] = st.session_state["eps_viewer"]["eps"]


@st.fragment
def compare(pair: list[str], image: np.ndarray, label: int, kind: str, params: dict) -> None:
    """Each model's whole eps grid is attacked once (cached) and sent to the browser, where the slider moves
    through it with no round-trip; the server hears the eps when the slider is released."""
    eps = float(st.session_state.get("eps", 0.3))
    share_link(links.query(models=pair, digit=linked_digit, attack=kind, preset=preset, eps=eps))
    at_eps = float(EPS_GRID[np.argmin(np.abs(EPS_GRID - eps))])
    first = st.empty()
    if not all(has_response(name, image, label, kind, params) for name in pair):
        # A new digit or attack: the verdicts at the slider's eps first (a tenth of the work), then the whole grid.
        queued = ATTACKING.waiting
        with st.spinner(f"Attacking… ({queued} attack{'s' * (queued != 1)} queued before this one)" if queued
                        else "Attacking…"):
            first_look = {name: response(name, image, label, kind, params, (at_eps,)) for name in pair}
        with first:
            view = eps_view.payload(first_look, label, kind, at_eps, class_names())
            EPS_VIEWER(data={**view, "pending": True}, key="eps_first")
    results = {name: response(name, image, label, kind, params) for name in pair}
    first.empty()
    EPS_VIEWER(data=eps_view.payload(results, label, kind, eps, class_names()), key="eps_viewer", default={"eps": eps},
               on_eps_change=remember_eps)


compare(pair, image, label, kind, params)
