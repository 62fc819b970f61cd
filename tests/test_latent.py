import json
from pathlib import Path

import pytest

from explorer import data, latent, models

COMMITTED = json.loads((Path(__file__).parent.parent / "results" / "latent.json").read_text())


@pytest.mark.parametrize("name", sorted(COMMITTED["models"]))
def test_geometry_matches_the_committed_results(name):
    model = models.load(name)
    row = COMMITTED["models"][name]
    assert row["weights_sha256"] == model.card["weights_sha256"]  # the results are of the shipped weights
    images, labels, _ = data.load_sample()
    measured = latent.geometry(latent.embed(model, images), labels)
    for key, value in measured.items():
        assert value == pytest.approx(row[key], rel=1e-4), key


def test_triplet_training_tightens_and_separates_the_clusters():
    rows = COMMITTED["models"]
    for name in ("triplet", "triplet-fgsm", "triplet-pgd"):
        assert rows[name]["intra_inter_ratio"] < rows["softmax"]["intra_inter_ratio"]
        assert rows[name]["silhouette"] > rows["softmax"]["silhouette"]
