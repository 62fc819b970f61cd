import dataclasses
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

from explorer import attacks, data, preprocess, results, sweeps


def run_app() -> AppTest:
    app = AppTest.from_file("../app.py", default_timeout=120)
    app.run()
    assert not app.exception, app.exception
    return app


def verdicts(app: AppTest) -> list[str]:
    return [element.value for element in [*app.success, *app.error]]


def test_the_attack_page_opens_with_both_default_models():
    app = run_app()
    assert app.title[0].value == "Attack a digit"
    assert [header.value for header in app.subheader] == ["softmax", "triplet"]
    assert len(verdicts(app)) == 2


def test_moving_eps_changes_the_verdict_of_a_known_digit():
    app = run_app()
    app.slider(key="eps").set_value(0.0).run()
    assert all(v.startswith("**still 7**") for v in verdicts(app))
    app.slider(key="eps").set_value(0.3).run()
    assert not app.exception
    # the first 7 of the sample: under FGSM (the default) at eps 0.3 triplet calls it a 3; softmax still sees a 7
    assert [e.value for e in app.error] == ["**now 3** at eps = 0.30"]


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
    committed = json.loads((Path(__file__).parent.parent / "results" / "table1.json").read_text())
    assert len(app.warning) == len(committed["flags"])
    assert results.how_made(committed) in app.caption[-1].value  # which run made which rows


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
    assert chosen["name"] == f"test digit #{indices[first_seven]}" and chosen["label"] == 7
    assert chosen["image"].dtype == np.float32
    assert np.array_equal(chosen["image"], data.to_tensor(images[first_seven : first_seven + 1])[0, 0].numpy())
    assert app.session_state["chosen_attack"] == {"kind": "fgsm",
                                                  "params": dataclasses.asdict(attacks.params_for("fgsm"))}


def test_the_digit_can_be_picked_from_the_strip_by_test_index_and_at_random():
    app = run_app()
    _, labels, indices = data.load_sample()
    sevens = np.flatnonzero(labels == 7)
    app.button(key=f"thumb-{sevens[3]}").click().run()
    assert app.session_state["chosen_digit"]["name"] == f"test digit #{indices[sevens[3]]}"
    assert app.number_input(key="which").value == 3
    app.switch_page("app_pages/budget.py").run()
    app.switch_page("app_pages/attack.py").run()
    assert app.session_state["chosen_digit"]["name"] == f"test digit #{indices[sevens[3]]}"  # the choice survives
    a_four = int(np.flatnonzero(labels == 4)[5])
    app.selectbox(key="test_index").set_value(int(indices[a_four])).run()
    assert app.session_state["chosen_digit"]["label"] == 4
    assert (app.selectbox(key="digit_class").value, app.number_input(key="which").value) == (4, 5)
    next(button for button in app.button if button.label == "Random digit").click().run()
    assert not app.exception, app.exception
    chosen = app.session_state["chosen_digit"]
    assert chosen["name"] == f"test digit #{app.selectbox(key='test_index').value}"
    assert len(verdicts(app)) == 2


def test_another_page_can_open_a_test_digit_here():
    app = run_app()
    _, labels, indices = data.load_sample()
    a_three = int(np.flatnonzero(labels == 3)[10])
    app.session_state["open_test_index"] = int(indices[a_three])
    app.run()
    assert app.session_state["chosen_digit"]["name"] == f"test digit #{indices[a_three]}"
    assert app.session_state["chosen_digit"]["label"] == 3
    assert "open_test_index" not in app.session_state
    missing = int(np.setdiff1d(np.arange(10_000), indices)[0])
    app.session_state["open_test_index"] = missing
    app.run()
    assert f"#{missing} is not among" in app.warning[0].value
    assert app.session_state["chosen_digit"]["name"] == f"test digit #{indices[a_three]}"


def test_an_uploaded_picture_is_made_an_mnist_digit_and_classified():
    app = run_app()
    app.radio(key="source").set_value("upload").run()
    assert not app.subheader  # nothing to attack until a picture arrives
    png, original = digit_png(2)
    app.file_uploader(key="upload").set_value(("two.png", png, "image/png")).run()
    assert not app.exception, app.exception
    chosen = app.session_state["chosen_digit"]
    assert chosen["name"] == "upload two.png"
    assert chosen["label"] == 2  # the true class defaults to the first model's reading
    assert chosen["image"].dtype == np.float32 and chosen["image"].shape == (28, 28)
    assert np.corrcoef(chosen["image"].ravel(), original.ravel())[0, 1] > 0.9
    assert any("inverted" in block.value for block in app.markdown)  # the preprocessing is explained
    app.slider(key="eps").set_value(0.0).run()
    assert [v.split(" at ")[0] for v in verdicts(app)] == ["**still 2**", "**still 2**"]


def test_a_file_that_is_not_an_image_gets_a_message_not_an_exception():
    app = run_app()
    app.radio(key="source").set_value("upload").run()
    app.file_uploader(key="upload").set_value(("digit.png", b"these bytes are not a picture", "image/png")).run()
    assert not app.exception, app.exception
    assert [e.value for e in app.error] == [preprocess.NOT_AN_IMAGE]
    assert not app.subheader


def test_the_drawing_pad_opens():
    app = run_app()
    app.radio(key="source").set_value("draw").run()
    assert not app.exception, app.exception
    assert app.caption[0].value.startswith("Draw one digit")
    assert app.info[0].value == "Nothing drawn yet."


def test_the_advanced_parameters_change_the_result():
    app = run_app()
    app.radio(key="kind").set_value("bim").run()
    assert [e.value for e in app.error] == ["**now 9** at eps = 0.30"]  # triplet, BIM's 10 steps of eps/10
    app.number_input(key="steps-bim").set_value(1).run()
    assert not app.exception, app.exception
    # one step of eps is FGSM, and gives FGSM's verdict
    assert [e.value for e in app.error] == ["**now 3** at eps = 0.30"]
    assert app.session_state["chosen_attack"]["params"]["steps"] == 1


def test_the_true_class_probability_is_drawn_against_eps():
    app = run_app()
    figure = plotly_figure(app, "Probability of the true class (7)")
    assert [trace["name"] for trace in figure["data"]] == ["softmax", "triplet"]
    at_03 = sweeps.EPS_GRID.index(0.3)
    for trace in figure["data"]:
        assert trace["x"] == sweeps.EPS_GRID
        assert trace["y"][0] > 0.9  # both read the clean 7 confidently
    assert figure["data"][1]["y"][at_03] < 0.5  # triplet reads a 3 at eps 0.3: the 7 lost the vote
    assert figure["layout"]["shapes"][0]["x0"] == 0.3
    app.slider(key="eps").set_value(0.1).run()
    assert plotly_figure(app, "Probability of the true class (7)")["layout"]["shapes"][0]["x0"] == 0.1


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
        assert [header.value for header in app.subheader] == ["triplet"]  # the page goes on with the model that loads
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

    config = tomllib.loads((Path(__file__).parent.parent / ".streamlit" / "config.toml").read_text())
    cap_mb = config["server"]["maxUploadSize"]
    assert cap_mb >= 1 and cap_mb * 2**20 <= preprocess.MAX_BYTES
