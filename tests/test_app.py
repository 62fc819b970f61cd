import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from explorer import attacks, data
from explorer.data import uploads
from explorer.evaluation import reports, results, sweeps


def run_app(**link: str) -> AppTest:
    """The app opened as a browser would open a link with this query (none: its plain address)."""
    app = AppTest.from_file("../app.py", default_timeout=120)
    for name, value in link.items():
        app.query_params[name] = value
    app.run()
    assert not app.exception, app.exception
    return app


def eps_view(app: AppTest) -> dict | None:
    """What page 1 sent its in-browser eps view (the browser draws it, so AppTest reads what was sent)."""
    views = [json.loads(element.proto.json) for element in app.get("bidi_component")]
    return views[0] if views else None


def verdicts(app: AppTest, eps: float | None = None) -> dict[str, int]:
    """Each model's reading at `eps` (default: where the view opens)."""
    view = eps_view(app)
    step = view["start"] if eps is None else view["eps"].index(eps)
    return {model["name"]: model["predictions"][step] for model in view["models"]}


def test_the_attack_page_opens_with_both_default_models():
    app = run_app()
    assert app.title[0].value == "Attack a digit"
    assert list(verdicts(app)) == ["softmax", "triplet"]
    assert eps_view(app)["eps"] == sweeps.EPS_GRID and eps_view(app)["eps"][eps_view(app)["start"]] == 0.3


def test_the_whole_eps_grid_goes_to_the_browser_with_the_verdicts_of_a_known_digit():
    app = run_app()
    view = eps_view(app)
    assert view["label"] == 7  # the first 7 of the sample
    assert verdicts(app, 0.0) == {"softmax": 7, "triplet": 7}
    # under FGSM (the default) at eps 0.3 triplet calls it a 3; softmax still sees a 7
    assert verdicts(app, 0.3) == {"softmax": 7, "triplet": 3}
    for model in view["models"]:
        adversarial = np.frombuffer(base64.b64decode(model["adversarial"]), np.uint8).reshape(-1, 28, 28)
        clean = np.frombuffer(base64.b64decode(model["clean"]), np.uint8).reshape(28, 28)
        assert adversarial.shape[0] == len(sweeps.EPS_GRID)
        # within each eps (plus the byte rounding): the pictures are the attack's, not a stand-in
        steps = np.abs(adversarial.astype(int) - clean).max(axis=(1, 2))
        assert (steps <= np.round(np.array(sweeps.EPS_GRID) * 255) + 1).all() and steps[-1] > 0


def test_a_shared_link_opens_the_view_it_names_and_the_url_follows_the_view():
    _, labels, indices = data.load_sample()
    a_three = int(indices[np.flatnonzero(labels == 3)[4]])
    link = {"models": "triplet-pgd,softmax", "digit": str(a_three), "attack": "pgd", "preset": "strong", "eps": "0.2"}
    app = run_app(**link)
    assert not app.warning
    assert app.session_state["model_pair"] == ["triplet-pgd", "softmax"]
    assert app.session_state["chosen_digit"].name == f"test digit #{a_three}"
    assert app.session_state["chosen_attack"] == attacks.Attack.of("pgd", "strong")
    view = eps_view(app)
    assert view["label"] == 3 and view["kind"] == "pgd" and view["eps"][view["start"]] == 0.2
    assert dict(app.query_params) == {**link, "eps": "0.20"}
    assert app.code[0].value.endswith("?" + "&".join(f"{k}={v}" for k, v in app.query_params.items()).replace(",",
                                                                                                           "%2C"))
    app.radio(key="kind").set_value("bim").run()
    assert app.query_params["attack"] == "bim"


def test_a_link_carries_the_attack_parameters_a_user_changed_and_opens_to_them():
    app = run_app()
    app.radio(key="kind").set_value("pgd").run()
    app.number_input(key="steps-pgd-paper").set_value(7).run()
    app.number_input(key="step_size-pgd-paper").set_value(None).run()
    app.radio(key="source").set_value("test").run()
    link = dict(app.query_params)
    assert {key: link[key] for key in ("attack", "preset", "steps", "step_size")} == {
        "attack": "pgd", "preset": "paper", "steps": "7", "step_size": "eps/steps"}
    assert "restarts" not in link  # only what differs from the preset
    opened = run_app(**link)
    assert not opened.warning and not opened.exception
    assert opened.session_state["chosen_attack"] == attacks.Attack.of("pgd", steps=7, step_size=None)
    assert opened.number_input(key="steps-pgd-paper").value == 7
    assert opened.number_input(key="step_size-pgd-paper").value is None
    assert verdicts(opened) == verdicts(app)
    assert dict(opened.query_params) == link


def test_a_bad_link_gets_notices_and_the_nearest_valid_view():
    app = run_app(models="nope", digit="seven", attack="cw", preset="weak", eps="0.9")
    assert not app.exception, app.exception
    notices = [warning.value for warning in app.warning]
    assert len(notices) == 5, notices
    assert "'nope'" in notices[0] and "eps 0.9 is not on the slider's grid" in notices[-1]
    assert list(verdicts(app)) == ["softmax", "triplet"]  # the default pair, digit and attack
    view = eps_view(app)
    assert view["label"] == 7 and view["kind"] == "fgsm" and view["eps"][view["start"]] == 0.5


def test_every_attack_runs():
    app = run_app()
    for kind in ("fgsm", "bim", "mim", "pgd"):
        app.radio(key="kind").set_value(kind).run()
        assert not app.exception, kind
        assert len(verdicts(app)) == 2


def test_the_budget_page_plots_the_committed_sweeps_for_the_pair():
    app = run_app()
    app.switch_page("app_pages/budget.py").run()
    assert not app.exception, app.exception
    assert app.title[0].value == "Epsilon budget"
    charts = app.get("plotly_chart")
    assert len(charts) == 2
    app.radio(key="budget_preset").set_value("strong").run()
    assert not app.exception, app.exception


def test_the_table1_page_shows_paper_and_ours():
    app = run_app()
    app.switch_page("app_pages/table1.py").run()
    assert not app.exception, app.exception
    table = app.dataframe[0].value
    assert list(table["source"][:3]) == ["paper", "ours, paper preset (10,000 digits)",
                                         "ours, strong preset (10,000 digits)"]
    committed = json.loads((Path(__file__).parent.parent / "results" / "table1.json").read_text(encoding="utf-8"))
    assert len(app.warning) == len(committed["flags"])
    assert results.how_made(committed) in app.caption[-1].value  # which run made which rows
    converged = results.committed("converged")["models"]
    effort = next(figure for figure in map(json.loads, (c.proto.spec for c in app.get("plotly_chart")))
                  if figure["layout"]["xaxis"].get("type") == "log")  # the convergence picture
    lines = {trace["name"]: trace for trace in effort["data"] if trace["mode"] == "lines+markers"}
    robust = [name for name, row in converged.items() if row["robust_accuracy"] > 0]
    assert sorted(lines) == sorted(f"{name}, converged evaluation" for name in robust)
    for name in robust:
        assert lines[f"{name}, converged evaluation"]["y"][-1] == pytest.approx(
            100 * converged[name]["robust_accuracy"])


def digit_png(label: int) -> tuple[bytes, np.ndarray]:
    """The first bundled test digit of a class as a photo-like PNG: black ink on white, four times MNIST's size."""
    images, labels, _ = data.load_sample()
    digit = images[int(np.flatnonzero(labels == label)[0])]
    buffer = io.BytesIO()
    Image.fromarray(255 - digit).resize((112, 112), Image.BILINEAR).save(buffer, format="PNG")
    return buffer.getvalue(), digit / 255


def plotly_figure(app: AppTest, title_start: str) -> dict:
    figures = [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]
    return next(f for f in figures if f["layout"].get("title", {}).get("text", "").startswith(title_start))


def test_the_page_shares_the_chosen_digit_and_attack_with_the_other_pages():
    app = run_app()
    images, labels, indices = data.load_sample()
    first_seven = int(np.flatnonzero(labels == 7)[0])
    chosen = app.session_state["chosen_digit"]
    assert chosen.name == f"test digit #{indices[first_seven]}" and chosen.label == 7
    assert chosen.image.dtype == np.float32
    assert np.array_equal(chosen.image, data.to_tensor(images[first_seven : first_seven + 1])[0, 0].numpy())
    assert app.session_state["chosen_attack"] == attacks.Attack.of("fgsm")
    assert app.session_state["view"].digit is chosen  # what every other page reads


def test_the_digit_can_be_picked_from_the_strip_by_test_index_and_at_random():
    app = run_app()
    _, labels, indices = data.load_sample()
    sevens = np.flatnonzero(labels == 7)
    app.button(key=f"thumb-{sevens[3]}").click().run()
    assert app.session_state["chosen_digit"].name == f"test digit #{indices[sevens[3]]}"
    assert app.number_input(key="which").value == 3
    app.switch_page("app_pages/budget.py").run()
    app.switch_page("app_pages/attack.py").run()
    assert app.session_state["chosen_digit"].name == f"test digit #{indices[sevens[3]]}"  # the choice survives
    a_four = int(np.flatnonzero(labels == 4)[5])
    app.selectbox(key="test_index").set_value(int(indices[a_four])).run()
    assert app.session_state["chosen_digit"].label == 4
    assert (app.selectbox(key="digit_class").value, app.number_input(key="which").value) == (4, 5)
    next(button for button in app.button if button.label == "Random digit").click().run()
    assert not app.exception, app.exception
    chosen = app.session_state["chosen_digit"]
    assert chosen.name == f"test digit #{app.selectbox(key='test_index').value}"
    assert len(verdicts(app)) == 2


def test_another_page_can_open_a_test_digit_here():
    app = run_app()
    _, labels, indices = data.load_sample()
    a_three = int(np.flatnonzero(labels == 3)[10])
    app.session_state["open_test_index"] = int(indices[a_three])
    app.run()
    assert app.session_state["chosen_digit"].name == f"test digit #{indices[a_three]}"
    assert app.session_state["chosen_digit"].label == 3
    assert "open_test_index" not in app.session_state
    missing = int(np.setdiff1d(np.arange(10_000), indices)[0])
    app.session_state["open_test_index"] = missing
    app.run()
    assert f"#{missing} is not among" in app.warning[0].value
    assert app.session_state["chosen_digit"].name == f"test digit #{indices[a_three]}"


def test_an_uploaded_picture_is_made_an_mnist_digit_and_classified():
    app = run_app()
    app.radio(key="source").set_value("upload").run()
    assert eps_view(app) is None  # nothing to attack until a picture arrives
    png, original = digit_png(2)
    app.file_uploader(key="upload").set_value(("two.png", png, "image/png")).run()
    assert not app.exception, app.exception
    chosen = app.session_state["chosen_digit"]
    assert chosen.name == "upload two.png"
    assert chosen.label == 2  # the true class defaults to the first model's reading
    assert chosen.image.dtype == np.float32 and chosen.image.shape == (28, 28)
    assert np.corrcoef(chosen.image.ravel(), original.ravel())[0, 1] > 0.9
    assert any("inverted" in block.value for block in app.markdown)  # the preprocessing is explained
    assert verdicts(app, 0.0) == {"softmax": 2, "triplet": 2}


def test_a_file_that_is_not_an_image_gets_a_message_not_an_exception():
    app = run_app()
    app.radio(key="source").set_value("upload").run()
    app.file_uploader(key="upload").set_value(("digit.png", b"these bytes are not a picture", "image/png")).run()
    assert not app.exception, app.exception
    assert [e.value for e in app.error] == [uploads.NOT_AN_IMAGE]
    assert eps_view(app) is None


def test_the_drawing_pad_opens():
    app = run_app()
    app.radio(key="source").set_value("draw").run()
    assert not app.exception, app.exception
    assert app.caption[0].value.startswith("Draw one digit")
    assert app.info[0].value == "Nothing drawn yet."


def test_the_advanced_parameters_change_the_result():
    app = run_app()
    app.radio(key="kind").set_value("bim").run()
    assert verdicts(app, 0.3) == {"softmax": 7, "triplet": 9}  # BIM's 10 steps of eps/10
    app.number_input(key="steps-bim-paper").set_value(1).run()
    assert not app.exception, app.exception
    assert verdicts(app, 0.3) == {"softmax": 7, "triplet": 3}  # one step of eps is FGSM, and gives FGSM's verdict
    assert app.session_state["chosen_attack"].params.steps == 1
    assert app.query_params["steps"] == "1"  # the link carries the change


def test_the_true_class_probability_against_eps_goes_to_the_browser_for_each_model():
    view = eps_view(run_app())
    at_03 = view["eps"].index(0.3)
    for model in view["models"]:
        curve = [probabilities[view["label"]] for probabilities in model["probabilities"]]
        assert len(curve) == len(sweeps.EPS_GRID) and curve[0] > 0.9  # both read the clean 7 confidently
    assert view["models"][1]["probabilities"][at_03][7] < 0.5  # triplet reads a 3 at eps 0.3: the 7 lost the vote
    assert eps_view(run_app(eps="0.1"))["start"] == view["eps"].index(0.1)  # where the view (and its marker) opens


def test_the_budget_page_runs_a_live_sweep_and_shows_digits_at_their_flipping_eps():
    app = run_app()
    app.switch_page("app_pages/budget.py").run()
    app.number_input(key="live_digits").set_value(5).run()
    app.button(key="live_run").click().run()
    assert not app.exception, app.exception
    spec = json.loads(app.get("plotly_chart")[2].proto.spec)
    pgd = [trace for trace in spec["data"] if trace["name"] == "PGD"]
    assert len(pgd) == 2 and all(trace["y"][0] >= trace["y"][-1] for trace in pgd)
    captions = [caption for image in app.get("image") for caption in image.captions]
    assert any(" → " in caption and " at eps " in caption for caption in captions), captions


def test_a_broken_checkpoint_is_named_and_the_app_goes_on_without_it(tmp_path, monkeypatch):
    import shutil

    import streamlit as st

    from explorer import models

    shipped = models.checkpoint_dir()
    for name in ("softmax", "triplet"):
        shutil.copy(shipped / f"{name}.json", tmp_path / f"{name}.json")
    shutil.copy(shipped / "triplet.safetensors", tmp_path / "triplet.safetensors")
    (tmp_path / "softmax.safetensors").write_bytes(b"\x00" * 64)  # damaged in transit
    monkeypatch.setenv("EXPLORER_CHECKPOINTS", str(tmp_path))
    st.cache_resource.clear()  # the models loaded by earlier tests came from the shipped folder
    try:
        app = run_app()
        [message] = [element.value for element in app.sidebar.error]
        assert "**softmax** cannot be used" in message and "does not match the card" in message
        assert list(verdicts(app)) == ["triplet"]  # the page goes on with the model that loads
        app.switch_page("app_pages/gallery.py").run()
        app.selectbox(key="gallery_model").set_value("softmax").run()
        assert not app.exception, app.exception
        assert any("**softmax** cannot be used" in element.value for element in app.main.error)
    finally:
        st.cache_resource.clear()


def test_the_app_loads_checkpoints_by_name_from_its_folder_never_by_path():
    import pytest

    from app_pages.shared import load_model
    from explorer import models

    with pytest.raises(models.CheckpointError, match="is not a checkpoint in"):
        load_model("../checkpoints/softmax")
    with pytest.raises(models.CheckpointError, match="is not a checkpoint in"):
        load_model(str(models.checkpoint_dir() / "softmax.safetensors"))


def test_uploads_are_capped_by_the_server_below_what_preprocessing_accepts():
    import tomllib

    config = tomllib.loads((Path(__file__).parent.parent / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    cap_mb = config["server"]["maxUploadSize"]
    assert cap_mb >= 1 and cap_mb * 2**20 <= uploads.MAX_BYTES


def test_your_own_models_go_through_every_page(tmp_path, monkeypatch):
    import streamlit as st
    import torch
    from made_elsewhere import Theirs, export, install_onnx_extra
    from safetensors.torch import save_file

    from explorer import models
    from explorer.models import own

    install_onnx_extra()
    monkeypatch.setenv("EXPLORER_CHECKPOINTS", str(tmp_path))
    torch.manual_seed(1)
    save_file({k: v.contiguous() for k, v in models.ConvNet().state_dict().items()}, tmp_path / "mine.bin")
    own.add(tmp_path / "mine.bin", "mine")  # the explorer's ConvNet, trained elsewhere
    own.add(export(Theirs(), tmp_path / "theirs.onnx"), "theirs")  # another architecture, from ONNX
    st.cache_resource.clear()  # the models loaded by earlier tests came from the shipped folder
    try:
        app = run_app(models="mine,theirs")
        assert list(verdicts(app)) == ["mine", "theirs"]
        for page in ("latent", "budget", "table1", "lens", "gallery", "guide"):
            app.switch_page(f"app_pages/{page}.py").run()
            assert not app.exception, (page, app.exception)
        app.switch_page("app_pages/budget.py").run()
        assert "No committed sweep for mine, theirs yet" in app.info[0].value
    finally:
        st.cache_resource.clear()


def test_the_sidebar_switches_dataset_and_every_page_follows_it(tmp_path, monkeypatch):
    import shutil

    import streamlit as st
    import torch

    from explorer import models

    for suffix in (".safetensors", ".json"):
        shutil.copy(models.checkpoint_dir() / f"softmax{suffix}", tmp_path)
    monkeypatch.setenv("EXPLORER_CHECKPOINTS", str(tmp_path))
    torch.manual_seed(0)  # a small model made here; only its card's data digest makes it Fashion-MNIST's
    card = {key: None for key in models.CARD_KEYS if key != "weights_sha256"}
    models.save(models.ConvNet(), tmp_path / "fashion-softmax", {
        **card, "name": "fashion-softmax", "clean_accuracy": 0.1, "data_sha256": data.FASHION_MNIST.content_sha256})
    st.cache_resource.clear()
    try:
        app = run_app()
        assert app.selectbox(key="dataset").value == "mnist" and list(verdicts(app)) == ["softmax"]
        app.selectbox(key="dataset").set_value("fashion-mnist").run()
        assert not app.exception, app.exception
        assert app.multiselect(key="model_pair").value == ["fashion-softmax"]
        view = eps_view(app)
        assert view["classes"] == list(data.FASHION_MNIST.class_names) and list(verdicts(app)) == ["fashion-softmax"]
        _, labels, indices = data.load_sample("fashion-mnist")
        shown = int(app.selectbox(key="test_index").value)
        assert shown in indices and view["label"] == labels[np.flatnonzero(indices == shown)[0]]
        assert any(f"true class {data.FASHION_MNIST.class_names[view['label']]}." in c.value for c in app.caption)
        for page in ("latent", "budget", "table1", "lens", "gallery", "guide"):
            app.switch_page(f"app_pages/{page}.py").run()
            assert not app.exception, (page, app.exception)
            if page == "gallery":
                assert app.selectbox(key="gallery_model").options == ["fashion-softmax"]

        linked = run_app(models="fashion-softmax", digit=str(indices[5]))  # a link names the dataset by its models
        assert linked.selectbox(key="dataset").value == "fashion-mnist"
        assert linked.selectbox(key="test_index").value == indices[5]
    finally:
        st.cache_resource.clear()


def test_the_shipped_fashion_models_come_with_the_switch_their_layouts_and_their_committed_evaluation(
        monkeypatch, tmp_path):
    import streamlit as st

    from explorer.latent import projection, stored

    def no_fit(*args, **kwargs):
        raise AssertionError("a shipped checkpoint's UMAP layout is read from assets/, never fitted")

    monkeypatch.setattr(projection, "import_umap", no_fit)
    monkeypatch.setattr(stored, "cached", lambda name: tmp_path / name)  # nothing fitted earlier on this machine
    committed = results.committed("converged", "fashion-mnist")["models"]
    st.cache_data.clear()
    try:
        app = run_app()
        app.selectbox(key="dataset").set_value("fashion-mnist").run()
        assert not app.exception, app.exception
        assert app.multiselect(key="model_pair").value == ["fashion-softmax", "fashion-triplet"]
        app.switch_page("app_pages/latent.py").run()
        app.radio(key="projection").set_value("umap").run()
        assert not app.exception, app.exception
        figure = json.loads(app.get("plotly_chart")[0].proto.spec)  # Figure 2 speaks of clothing, not digits
        names = {trace.get("name") for trace in figure["data"]}
        assert set(data.FASHION_MNIST.class_names) <= names
        assert "attacked image (colour: class it is taken for)" in names
        assert "2,000 clean test images" in app.markdown[0].value and "digit" not in app.markdown[0].value
        app.switch_page("app_pages/table1.py").run()
        assert not app.exception, app.exception
        shown = app.dataframe[0].value
        assert list(shown["model"]) == list(committed)
        assert list(shown["converged robust accuracy (%)"]) == [round(100 * row["robust_accuracy"], 2)
                                                                for row in committed.values()]
    finally:
        st.cache_data.clear()


def words_shown(app: AppTest) -> str:
    """Every text and widget label in the page's main area, lower-cased."""
    main = app.main
    texts = [element.value for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning")
             for element in getattr(main, kind)]
    for kind in ("radio", "selectbox", "number_input", "checkbox", "toggle", "button", "slider"):
        for widget in getattr(main, kind):
            texts += [widget.label, widget.help or "", *map(str, getattr(widget, "options", []))]
    return " ".join(map(str, texts)).lower()


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_every_page_shows_the_one_view_in_its_datasets_language(dataset):
    """One digit, attack and eps on every page, the same defaults everywhere; clothing is never called a digit."""
    spec = data.DATASETS[dataset]
    _, labels, indices = data.load_sample(dataset)
    first_seven = int(indices[np.flatnonzero(labels == 7)[0]])
    app = run_app()
    app.selectbox(key="dataset").set_value(dataset).run()
    assert not app.exception, app.exception
    shown = app.session_state["view"]
    assert (shown.dataset, shown.digit.test_index, shown.attack, shown.eps) == (
        dataset, first_seven, attacks.Attack.of("fgsm"), 0.3)
    assert shown.digit.name == f"test {spec.item} #{first_seven}"
    for page in ("attack", "latent", "lens", "gallery", "budget"):
        app.switch_page(f"app_pages/{page}.py").run()
        assert not app.exception, (page, app.exception)
        assert app.session_state["view"].digit.test_index == first_seven, page
        words = words_shown(app)
        if dataset == "mnist":
            assert "digit" in words, page
        else:
            assert "digit" not in words, (page, words[max(0, words.find("digit") - 80):words.find("digit") + 40])
            assert "image" in words, page
        if page == "lens":
            assert f"test {spec.item} #{first_seven}" in words


def test_another_datasets_table1_page_shows_its_converged_evaluation(tmp_path, monkeypatch, with_fashion_model):
    import streamlit as st

    monkeypatch.setattr(results, "COMMITTED", tmp_path / "results")
    row = reports.write_converged(tmp_path / "results", names=["fashion-new"], digits=20,
                                  batch_size=20, device="cpu", progress=False)["models"]["fashion-new"]
    st.cache_resource.clear()
    st.cache_data.clear()
    try:
        app = run_app(models="fashion-new")
        app.switch_page("app_pages/table1.py").run()
        assert not app.exception, app.exception
        shown = app.dataframe[0].value
        assert list(shown["model"]) == ["fashion-new"]
        assert shown["converged robust accuracy (%)"][0] == round(100 * row["robust_accuracy"], 2)
        assert any("results/fashion-mnist/converged.json" in caption.value for caption in app.caption)
    finally:
        st.cache_resource.clear()
        st.cache_data.clear()


ASCII_LOCALE_RUN = """
from streamlit.testing.v1 import AppTest
app = AppTest.from_file("app.py", default_timeout=120).run()
for page in ("attack", "latent", "budget", "table1", "lens", "gallery", "guide"):
    app.switch_page(f"app_pages/{page}.py").run()
    assert not app.exception, (page, app.exception)
"""


def test_every_page_opens_on_a_machine_whose_locale_is_ascii():
    """With the C locale and Python's UTF-8 coercion off, open() defaults to ASCII: the app reads and writes its
    files as UTF-8 all the same (its eps viewer's script holds an ellipsis)."""
    import os
    import subprocess
    import sys

    ascii_locale = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    run = subprocess.run([sys.executable, "-c", ASCII_LOCALE_RUN], cwd=Path(__file__).parent.parent,
                         env=ascii_locale, capture_output=True, text=True, encoding="utf-8", timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
