"""Page 1: attack one digit (from the test set, an upload or a drawing) and compare the two models side by side."""

import hashlib
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from app_pages.shared import (
    ATTACKING,
    EPS_GRID,
    choose,
    chosen_models,
    class_names,
    current_dataset,
    current_view,
    has_response,
    item,
    load_model,
    preset_radio,
    response,
    sample,
    share_link,
)
from explorer import attacks, data
from explorer.data import uploads
from explorer.plots import figures
from explorer.web import eps_view, view
from explorer.web.links import EPS_OVER_STEPS, LIMITS
from explorer.web.view import Digit, attack_page_title

SOURCES = {"test": "Test set", "upload": "Upload a picture", "draw": "Draw"}
# The eps view draws in the browser: moving the slider never waits for the server (assets/eps_viewer.*).
ASSETS = Path(__file__).parent.parent / "assets"
EPS_VIEWER = st.components.v2.component(
    "explorer.eps_viewer", html="", js=(ASSETS / "eps_viewer.js").read_text(encoding="utf-8"),
    css=(ASSETS / "eps_viewer.css").read_text(encoding="utf-8"))
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


def from_test_set() -> Digit:
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
    controls[3].button(f"Random {item()}", icon=":material/casino:", on_click=select_at_random)
    which = st.session_state["which"]
    position = int(of_class[which])
    start = which // STRIP * STRIP
    strip = st.columns(STRIP)
    for column, candidate in zip(strip, of_class[start:start + STRIP], strict=False):
        column.image(figures.digit_image(images[candidate] / 255, 2))
        column.button(f"#{indices[candidate]}", key=f"thumb-{candidate}", on_click=select, args=(int(candidate),),
                      type="primary" if candidate == position else "secondary", width="stretch")
    return view.test_digit(images, labels, indices, position, item())


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


def chosen_attack(kind: str, preset_name: str, shown: attacks.Attack) -> attacks.Attack:
    """The attack the widgets make: the preset's parameters with the user's changes. Keys carry the attack and
    preset so each keeps its own; they start from the view's attack when it is of this kind and preset (the user's
    or a link's changes), else from the preset."""
    preset = attacks.preset_params(kind, preset_name)
    start = shown.params if (shown.kind, shown.preset) == (kind, preset_name) else preset
    tag = f"{kind}-{preset_name}"
    for name in ("steps", "step_size", "restarts", "random_start", "decay", "loss"):
        st.session_state.setdefault(f"{name}-{tag}", getattr(start, name))
    single = kind == "fgsm"

    def was(name: str, value: object) -> str:
        return f"The {preset_name} preset's: {EPS_OVER_STEPS if value is None else value}."

    with st.expander(f"Advanced attack parameters (start: the {preset_name} preset)"):
        columns = st.columns(3)
        steps = columns[0].number_input("Steps", *LIMITS["steps"], key=f"steps-{tag}", disabled=single,
                                        help=f"FGSM is one step by definition. {was('steps', preset.steps)}")
        step_size = columns[1].number_input(  # value None: the field may be empty (eps / steps)
            "Step size", *LIMITS["step_size"], None, step=0.005, format="%.3f", key=f"step_size-{tag}", disabled=single,
            placeholder=EPS_OVER_STEPS,
            help=f"Empty means eps / steps (FGSM: one step of eps). {was('step_size', preset.step_size)}")
        restarts = columns[2].number_input(
            "Restarts", *LIMITS["restarts"], key=f"restarts-{tag}",
            help="A restart runs only if the previous runs failed; without a random start it repeats the same "
                 f"run. {was('restarts', preset.restarts)}")
        random_start = columns[0].checkbox("Random start", key=f"random_start-{tag}",
                                           help="Start at a uniform random point of the eps-ball (PGD). "
                                                f"{was('random start', preset.random_start)}")
        decay = columns[1].number_input("Momentum decay", *LIMITS["decay"], step=0.1, key=f"decay-{tag}",
                                        disabled=kind != "mim",
                                        help=f"MIM's momentum; any other attack has none. {was('decay', preset.decay)}")
        loss = columns[2].selectbox("Loss", attacks.UNTARGETED_LOSSES, format_func=LOSS_NAMES.get, key=f"loss-{tag}",
                                    help=was("loss", preset.loss))
    return attacks.Attack.of(kind, preset_name, steps=steps, step_size=step_size, random_start=random_start,
                             decay=decay, loss=loss, restarts=restarts)


def describe(attack: attacks.Attack) -> str:
    kind, params = attack.kind, attack.params
    step = "eps / steps" if params.step_size is None else f"{params.step_size:g}"
    parts = [f"{params.steps} step{'s' * (params.steps > 1)} of {step}",
             "random start" if params.random_start else "no random start",
             f"momentum decay {params.decay:g}" if params.decay else "",
             f"loss {params.loss}",
             f"{params.restarts} restarts" if params.restarts > 1 else ""]
    return f"{kind.upper()}: " + ", ".join(part for part in parts if part) + "."


st.title(attack_page_title(item()))
images, labels, indices = sample()
pair = chosen_models()

# Another page asks for a test digit by setting this key before switching here.
if (opened := st.session_state.pop("open_test_index", None)) is not None:
    matches = np.flatnonzero(indices == opened)
    if len(matches):
        st.session_state["source"] = "test"
        select(int(matches[0]))
    else:
        st.warning(f"Test {item()} #{opened} is not among the {len(indices):,} bundled with the app.")
if "digit_class" not in st.session_state:
    shown = current_view().digit
    select(int(np.flatnonzero(indices == shown.test_index)[0]) if shown.test_index in indices
           else int(np.flatnonzero(labels == view.DEFAULT_CLASS)[0]))

source = st.radio(f"{item().capitalize()} from", SOURCES, format_func=SOURCES.get, horizontal=True, key="source",
                  persist_state="session")
if source == "test":
    digit = from_test_set()
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
    digit = Digit(image, int(label), name)

choices = st.columns([3, 2])
kind = choices[0].radio("Attack", attacks.KINDS, horizontal=True, format_func=str.upper, key="kind",
                        persist_state="session")
preset = preset_radio("Preset", "preset", where=choices[1], persist_state="session")
shown = choose(digit, chosen_attack(kind, preset, current_view().attack))
st.caption(f"{digit.name}, true class {class_names()[digit.label]}. {describe(shown.attack)}")


def remember_eps() -> None:
    st.session_state["eps"] = st.session_state["eps_viewer"]["eps"]


@st.fragment
def compare(pair: list[str], digit: Digit, attack: attacks.Attack) -> None:
    """Each model's whole eps grid is attacked once (cached) and sent to the browser, where the slider moves
    through it with no round-trip; the server hears the eps when the slider is released."""
    eps = float(st.session_state.get("eps", view.DEFAULT_EPS))
    share_link(current_view().link() | {"eps": f"{eps:.2f}"})
    at_eps = float(EPS_GRID[np.argmin(np.abs(EPS_GRID - eps))])
    first = st.empty()
    if not all(has_response(name, digit, attack) for name in pair):
        # A new digit or attack: the verdicts at the slider's eps first (a tenth of the work), then the whole grid.
        queued = ATTACKING.waiting
        with st.spinner(f"Attacking… ({queued} attack{'s' * (queued != 1)} queued before this one)" if queued
                        else "Attacking…"):
            first_look = {name: response(name, digit, attack, (at_eps,)) for name in pair}
        with first:
            payload = eps_view.payload(first_look, digit.label, attack.kind, at_eps, class_names())
            EPS_VIEWER(data={**payload, "pending": True}, key="eps_first")
    results = {name: response(name, digit, attack) for name in pair}
    first.empty()
    EPS_VIEWER(data=eps_view.payload(results, digit.label, attack.kind, eps, class_names()), key="eps_viewer",
               default={"eps": eps}, on_eps_change=remember_eps)


compare(pair, digit, shown.attack)
