"""Page 5: the paper's Figure 1 for any model: the same digits under all four attacks, labelled y and y_pred."""

import streamlit as st

from app_pages.shared import (
    ATTACKING,
    bundled,
    class_legend,
    current_dataset,
    eps_slider,
    item,
    load_model,
    models_of_dataset,
    preset_radio,
    usable,
)
from explorer import attacks, models
from explorer.plots import figures, gallery


@st.cache_data(max_entries=32, show_spinner="Attacking the digits with FGSM, BIM, MIM and PGD…")
def attacked(model_name: str, dataset: str, eps: float, preset: str, count: int, seed: int | None) -> gallery.Gallery:
    images, labels, indices = bundled(dataset)
    chosen = gallery.pick_digits(labels, count, seed)
    model = load_model(model_name)
    with ATTACKING.turn():
        return gallery.attack_digits(model, images[chosen], labels[chosen], indices[chosen], eps, preset)


st.title("Gallery (Figure 1)")
ITEM = item()
available = models_of_dataset()
if not available:
    st.info(f"No checkpoints in {models.checkpoint_dir()}: train one with `explorer train softmax`.")
    st.stop()
pair = [name for name in st.session_state.get("models") or [] if name in available]
controls = st.columns([1, 2, 1])
model_name = controls[0].selectbox("Model", available, index=available.index(pair[0]) if pair else 0,
                                   key="gallery_model")
if not usable([model_name]):
    st.stop()
eps = eps_slider("gallery_eps", controls[1])
preset = preset_radio("Attack preset", "gallery_preset", where=controls[2])
choice = st.columns([2, 1, 1, 1])
digits = choice[0].radio(f"{ITEM.capitalize()}s", ["one of each class", "random"], horizontal=True,
                         key="gallery_digits", help="one of each class: the bundled sample's first of class 0, of "
                         f"class 1, … (then the second of each); random: drawn from its 2,000 test {ITEM}s")
count = choice[1].number_input("How many", 1, 20, 10, key="gallery_count")
seed = choice[2].number_input("Seed", 0, 10_000, 0, key="gallery_seed", disabled=digits != "random")
fooled_only = choice[3].checkbox(f"Only fooled {ITEM}s", key="gallery_fooled")

result = attacked(model_name, current_dataset(), eps, preset, int(count), int(seed) if digits == "random" else None)
if not gallery.shown_digits(result, fooled_only):
    st.info(f"No attack fooled {model_name} on these {ITEM}s at eps = {eps:.2f}.")
    st.stop()
grid = gallery.render(result, fooled_only)
st.image(grid, caption=f"Each column is one test {ITEM}, each row one attack: y is the true class, the number after "
         f"the arrow the model's prediction on the adversarial {ITEM}; red where the attack fooled the model. "
         + class_legend())
st.caption(" · ".join(f"{kind.upper()} fooled {int(result.fooled(kind).sum())} of {len(result.labels)}"
                      for kind in attacks.KINDS) + f" · test {ITEM}s {', '.join(f'#{i}' for i in result.indices)}")
command = f"explorer gallery --model {model_name} --eps {eps:.2f} --preset {preset} --count {count}"
command += f" --seed {seed}" if digits == "random" else ""
st.caption(f"The same grid from the command line: `{command}{' --fooled-only' if fooled_only else ''}`")
st.download_button("Download the grid (PNG)", figures.png_bytes(grid), mime="image/png", key="gallery_png",
                   file_name=f"gallery-{model_name}-eps{eps:.2f}-{preset}.png")
