import json
from pathlib import Path

import pytest

from explorer import data, latent, models

RESULTS = Path(__file__).parent.parent / "results"
COMMITTED = json.loads((RESULTS / "latent.json").read_text(encoding="utf-8"))
FASHION = json.loads((RESULTS / "fashion-mnist" / "latent.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name, committed", [*((name, COMMITTED) for name in sorted(COMMITTED["models"])),
                                             *((name, FASHION) for name in sorted(FASHION["models"]))])
def test_geometry_matches_the_committed_results(name, committed):
    model = models.load(name)
    row = committed["models"][name]
    assert row["weights_sha256"] == model.card["weights_sha256"]  # the results are of the shipped weights
    images, labels, _ = data.load_sample(models.dataset_of(model.card))
    measured = latent.geometry(latent.embed(model, images), labels)
    for key, value in measured.items():
        assert value == pytest.approx(row[key], rel=1e-4), key


def test_triplet_training_tightens_and_separates_the_clusters():
    rows = COMMITTED["models"]
    for name in ("triplet", "triplet-fgsm", "triplet-pgd"):
        assert rows[name]["intra_inter_ratio"] < rows["softmax"]["intra_inter_ratio"]
        assert rows[name]["silhouette"] > rows["softmax"]["silhouette"]
    # beside adversarial training too: the control without the triplet loss has the looser clusters
    assert rows["triplet-pgd"]["intra_inter_ratio"] < rows["softmax-pgd"]["intra_inter_ratio"]
    assert rows["triplet-pgd"]["silhouette"] > rows["softmax-pgd"]["silhouette"]
    fashion = FASHION["models"]
    assert fashion["fashion-triplet"]["intra_inter_ratio"] < fashion["fashion-softmax"]["intra_inter_ratio"]
    assert fashion["fashion-triplet"]["silhouette"] > fashion["fashion-softmax"]["silhouette"]
