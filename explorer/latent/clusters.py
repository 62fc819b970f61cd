"""How well a latent space clusters by class: distances, silhouette, k-NN accuracy, per checkpoint."""

from __future__ import annotations

import numpy as np
import torch

from explorer import data, models
from explorer.latent.embedding import embed


def geometry(embeddings: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Mean distance between same-class pairs, between different-class pairs, their ratio (lower: tighter and
    better separated, whatever the scale of the space) and the silhouette score (higher is better)."""
    # Here, not at the top: scikit-learn takes a second to import, and the app's latent page never needs it.
    from sklearn.metrics import silhouette_score

    z = torch.from_numpy(embeddings)
    distances = torch.cdist(z, z)
    same = torch.from_numpy(labels[:, None] == labels[None, :])
    off_diagonal = ~torch.eye(len(labels), dtype=torch.bool)
    intra = float(distances[same & off_diagonal].mean())
    inter = float(distances[~same].mean())
    return {"intra_class_distance": intra, "inter_class_distance": inter, "intra_inter_ratio": intra / inter,
            "silhouette": float(silhouette_score(embeddings, labels))}


def knn_accuracy(train_z: np.ndarray, train_y: np.ndarray, test_z: np.ndarray, test_y: np.ndarray,
                 k: int = 5) -> float:
    """How often a test digit's k nearest training embeddings vote for its true class."""
    from sklearn.neighbors import KNeighborsClassifier

    classifier = KNeighborsClassifier(n_neighbors=k).fit(train_z, train_y)
    return float((classifier.predict(test_z) == test_y).mean())


def images_used(dataset: str = "mnist") -> dict[str, str]:
    """What `report` measures on, as a result file records it."""
    if dataset == "mnist":
        return {"geometry": "assets/mnist_test_sample.npz (2,000 test digits, 200 per class)",
                "knn": "60,000 training embeddings vote for each of the 10,000 test digits (k = 5)"}
    return {"geometry": f"{data.sample_path(dataset).relative_to(data.ASSETS.parent)} (2,000 test images, 200 per "
                        "class)",
            "knn": "60,000 training embeddings vote for each of the 10,000 test images (k = 5)"}


def report(names: list[str], dataset: str = "mnist") -> dict[str, dict]:
    """Latent geometry of each model (of `dataset`), by name: on the bundled 2,000 test images (pairwise distances,
    silhouette) and k-NN accuracy of the 10,000 test embeddings against the 60,000 training ones."""
    sample_images, sample_labels, _ = data.load_sample(dataset)
    train_images, train_labels = data.load_split("train", dataset)
    test_images, test_labels = data.load_split("test", dataset)
    rows = {}
    for name in names:
        model = models.load(name)
        rows[name] = {
            **geometry(embed(model, sample_images), sample_labels),
            "knn5_accuracy": knn_accuracy(embed(model, train_images), train_labels, embed(model, test_images),
                                          test_labels),
        }
    return rows
