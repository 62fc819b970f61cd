"""The latent-space view (the paper's Figure 2): projections, migrating digits, the figure, the CLI and the page."""

import json

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from explorer import cli, data, latent, latent_figure, migration, models, projection


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


def test_every_shipped_checkpoint_has_its_umap_layout_in_assets(sample):
    for name in models.available():
        card = models.load(name).card
        path = projection.SHIPPED_LAYOUTS / projection.layout_name(card["weights_sha256"], sample[0])
        assert projection.read_layout(path, len(sample[0])) is not None, f"{name}: run `explorer layouts`"


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
    assert projection.read_layout(broken, 2000) is None
    np.savez(tmp_path / "wrong.npz", coordinates=np.zeros((5, 2)))
    assert projection.read_layout(tmp_path / "wrong.npz", 2000) is None


def test_digits_migrate_away_from_their_class_as_eps_grows(sample):
    images, labels, _ = sample
    chosen = np.array([np.flatnonzero(labels == c)[0] for c in range(10)])
    model = models.load("softmax")
    moved = migration.migrate(model, data.to_tensor(images[chosen]), torch.from_numpy(labels[chosen]), "bim")
    assert moved.embeddings.shape == (len(migration.EPS_FRAMES), 10, 64)
    with torch.no_grad():
        clean = model.embed(data.to_tensor(images[chosen])).numpy()
    np.testing.assert_allclose(moved.embeddings[0], clean, atol=1e-4)  # eps 0 is the clean digit
    assert not moved.fooled[0].any()
    assert moved.fooled[-1].sum() >= moved.fooled[len(moved.eps) // 2].sum() > 0
    travelled = np.linalg.norm(moved.embeddings - moved.embeddings[:1], axis=2).mean(1)
    assert (np.diff(travelled) > 0).sum() >= len(travelled) - 3  # farther, almost always, with every eps step


def test_the_figure_has_one_frame_per_eps_and_axes_that_hold_every_point(sample, triplet_embeddings):
    images, labels, indices = sample
    view = projection.fit_pca(triplet_embeddings)
    moved = migration.migrate(models.load("triplet"), data.to_tensor(images[:3]), torch.from_numpy(labels[:3]),
                              "fgsm")
    panel = latent_figure.panel("triplet", view, labels, indices, moved, indices[:3])
    figure = latent_figure.migration_figure([panel, panel])
    assert [frame.name for frame in figure.frames] == [f"{e:.2f}" for e in migration.EPS_FRAMES]
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
    page = out.read_text()
    assert "Plotly.newPlot" in page and "Plotly.addFrames" in page


def test_cli_refuses_a_digit_outside_the_sample():
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["figure2", "--digits", "one", "--index", "-5"])
    assert exit_info.value.code == 2


def run_latent_page() -> AppTest:
    app = AppTest.from_file("../app.py", default_timeout=180)
    app.run()
    app.switch_page("pages/latent.py").run()
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
    assert len(spec["frames"]) == len(migration.EPS_FRAMES)
    assert spec["layout"]["sliders"][0]["active"] == migration.EPS_FRAMES.index(0.3)
