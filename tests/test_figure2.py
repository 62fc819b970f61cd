"""The latent-space view (the paper's Figure 2): projections, migrating digits, the figure, the CLI and the page."""

import base64
import json

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from explorer import cli, data, latent, models
from explorer.evaluation import evaluate, sweeps
from explorer.latent import projection, stored, trajectories
from explorer.plots import latent_figure


@pytest.fixture(scope="module")
def sample():
    return data.load_sample()


@pytest.fixture(scope="module")
def triplet_embeddings(sample):
    return latent.embed(models.load("triplet"), sample[0])


def test_pca_places_reference_and_new_points_by_the_same_linear_map(triplet_embeddings):
    view = projection.fit_pca(triplet_embeddings)
    np.testing.assert_allclose(view.transform(triplet_embeddings), view.coordinates, atol=1e-3)
    # the first axis carries the most variance
    assert view.coordinates[:, 0].var() >= view.coordinates[:, 1].var()


def test_every_shipped_checkpoint_has_its_embeddings_and_umap_layout_in_assets():
    for name in models.available():
        model = models.load(name)
        images = data.load_sample(models.dataset_of(model.card))[0]  # each model's layout is of its own dataset
        weights = model.card["weights_sha256"]
        layout = stored.SHIPPED / projection.layout_name(weights, images)
        assert stored.read(layout, (len(images), 2)) is not None, f"{name}: run `explorer layouts`"
        embeddings = stored.read(stored.SHIPPED / stored.key("embeddings", weights, images),
                                 (len(images), models.EMBEDDING_DIM))
        assert embeddings is not None, f"{name}: run `explorer layouts`"
        np.testing.assert_allclose(embeddings[:100], latent.embed(model, images[:100]), atol=1e-3)


def test_embeddings_of_an_unseen_checkpoint_are_computed_once_then_read_from_the_cache(sample, tmp_path,
                                                                                       monkeypatch):
    monkeypatch.setenv("EXPLORER_DATA", str(tmp_path))
    model = models.load("softmax")
    digits = sample[0][:50]  # not the shipped digits: nothing in assets/ fits them
    first = latent.reference_embeddings(model, digits)
    kept = list((tmp_path / "projections").glob("embeddings-*.npz"))
    assert len(kept) == 1
    np.testing.assert_array_equal(stored.read(kept[0], first.shape), first)
    stored.write(kept[0], first + 1)  # what is on disk is what is read back
    np.testing.assert_array_equal(latent.reference_embeddings(model, digits), first + 1)


def test_umap_reads_the_shipped_layout_and_places_clean_digits_on_their_own_cluster(sample, triplet_embeddings):
    card = models.load("triplet").card
    view = projection.fit("umap", triplet_embeddings, card["weights_sha256"], sample[0])
    labels = sample[1]
    placed = view.transform(triplet_embeddings[:200])
    centres = np.stack([view.coordinates[labels == c].mean(0) for c in range(10)])
    nearest_centre = np.linalg.norm(placed[:, None] - centres[None], axis=2).argmin(1)
    assert (nearest_centre == labels[:200]).mean() > 0.95


def test_a_damaged_layout_is_refused_not_read(tmp_path):
    broken = tmp_path / "umap-x.npz"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    assert stored.read(broken, (2000, 2)) is None
    np.savez(tmp_path / "wrong.npz", values=np.zeros((5, 2)))
    assert stored.read(tmp_path / "wrong.npz", (2000, 2)) is None
    np.savez(tmp_path / "nan.npz", values=np.full((2000, 2), np.nan))
    assert stored.read(tmp_path / "nan.npz", (2000, 2)) is None


def test_digits_migrate_away_from_their_class_as_eps_grows(sample):
    images, labels, _ = sample
    chosen = np.array([np.flatnonzero(labels == c)[0] for c in range(10)])
    model = models.load("softmax")
    moved = trajectories.migrate(model, data.to_tensor(images[chosen]), torch.from_numpy(labels[chosen]), "bim")
    assert moved.embeddings.shape == (len(trajectories.EPS_FRAMES), 10, 64)
    with torch.no_grad():
        clean = model.embed(data.to_tensor(images[chosen])).numpy()
    np.testing.assert_allclose(moved.embeddings[0], clean, atol=1e-4)  # eps 0 is the clean digit
    assert not moved.fooled[0].any()
    assert moved.fooled[-1].sum() >= moved.fooled[len(moved.eps) // 2].sum() > 0
    travelled = np.linalg.norm(moved.embeddings - moved.embeddings[:1], axis=2).mean(1)
    assert (np.diff(travelled) > 0).sum() >= len(travelled) - 3  # farther, almost always, with every eps step


def test_page_1s_attack_of_a_digit_gives_the_same_migration_as_attacking_it_again(sample):
    """The latent page follows page 1's cached attack of its digit instead of attacking it again: same result."""
    images, labels, _ = sample
    model = models.load("softmax")
    image, label = data.to_tensor(images[:1]), torch.from_numpy(labels[:1])
    grid = tuple(sweeps.EPS_GRID)
    page_1 = evaluate.eps_response(model, image[0], int(label), "pgd", np.array(grid))
    followed = trajectories.follow(model, page_1.eps, torch.from_numpy(page_1.adversarial)[:, None, None],
                                labels[:1])
    attacked_again = trajectories.migrate(model, image, label, "pgd", grid)
    np.testing.assert_array_equal(followed.predictions[:, 0], page_1.predictions)
    np.testing.assert_array_equal(followed.predictions, attacked_again.predictions)
    np.testing.assert_allclose(followed.embeddings, attacked_again.embeddings, atol=1e-4)
    assert followed.fooled[-1, 0] and not followed.fooled[0, 0]


def test_the_figure_has_one_frame_per_eps_and_axes_that_hold_every_point(sample, triplet_embeddings):
    images, labels, indices = sample
    view = projection.fit_pca(triplet_embeddings)
    moved = trajectories.migrate(models.load("triplet"), data.to_tensor(images[:3]), torch.from_numpy(labels[:3]),
                              "fgsm")
    panel = latent_figure.panel("triplet", view, labels, indices, moved, indices[:3])
    figure = latent_figure.migration_figure([panel, panel])
    assert [frame.name for frame in figure.frames] == [f"{e:.2f}" for e in trajectories.EPS_FRAMES]
    for axis, column in (("xaxis", 0), ("yaxis", 1)):
        low, high = figure.layout[axis].range
        assert low <= panel.paths[..., column].min() and panel.paths[..., column].max() <= high
        assert low <= panel.points[:, column].min() and panel.points[:, column].max() <= high
    last = figure.frames[-1].data[1]
    assert [latent_figure.CLASS_COLOURS[p] for p in moved.predictions[-1]] == list(last.marker.color)


def test_cli_writes_figure2_as_a_standalone_page(tmp_path, capsys):
    out = tmp_path / "figure2.html"
    assert cli.main(["figure2", "--models", "softmax", "--attack", "fgsm", "--out", str(out)]) == 0
    assert "digits taken for another class" in capsys.readouterr().out
    page = out.read_text(encoding="utf-8")
    assert "Plotly.newPlot" in page and "Plotly.addFrames" in page


def test_cli_refuses_a_digit_outside_the_sample():
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["figure2", "--digits", "one", "--index", "-5"])
    assert exit_info.value.code == 2


def run_latent_page(**link: str) -> AppTest:
    app = AppTest.from_file("../app.py", default_timeout=180)
    for name, value in link.items():
        app.query_params[name] = value
    app.run()
    app.switch_page("app_pages/latent.py").run()
    assert not app.exception, app.exception
    return app


def test_the_latent_page_draws_both_models_and_the_paper_figure():
    app = run_latent_page()
    assert app.title[0].value == "Latent space (Figure 2)"
    spec = json.loads(app.get("plotly_chart")[0].proto.spec)
    assert [a["text"] for a in spec["layout"]["annotations"][:2]] == ["softmax", "triplet"]
    assert len(spec["frames"]) == 26  # page 1's eps grid for page 1's digit
    app.radio(key="projection").set_value("umap").run()
    assert not app.exception, app.exception
    app.toggle(key="paper_figure").set_value(True).run()
    assert not app.exception, app.exception
    spec = json.loads(app.get("plotly_chart")[0].proto.spec)
    assert spec["layout"]["annotations"][0]["text"] == "triplet"
    assert len(spec["frames"]) == len(trajectories.EPS_FRAMES)
    assert spec["layout"]["sliders"][0]["active"] == trajectories.EPS_FRAMES.index(0.3)


def test_a_link_to_the_latent_page_names_its_projection_and_highlighted_digit(sample):
    _, labels, indices = sample
    a_four = int(indices[np.flatnonzero(labels == 4)[2]])
    app = run_latent_page(projection="umap", digit=str(a_four), attack="pgd")
    assert app.radio(key="projection").value == "umap"
    assert app.radio(key="latent_kind").value == "pgd"
    spec = json.loads(app.get("plotly_chart")[0].proto.spec)
    [start, _] = [trace["customdata"] for trace in spec["data"] if trace.get("name") == "clean digit (start)"]
    assert np.frombuffer(base64.b64decode(start["bdata"]), start["dtype"]).tolist() == [a_four]  # the link's digit
    assert app.query_params["projection"] == "umap" and app.query_params["digit"] == str(a_four)
    app.radio(key="projection").set_value("pca").run()
    assert app.query_params["projection"] == "pca"
