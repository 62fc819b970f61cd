"""The latent space: a model's embeddings (embedding.py), how well they cluster by class (clusters.py), their 2-D
views (projection.py), digits followed through it as eps grows (trajectories.py), and the arrays worked out once per
checkpoint and kept on disk (stored.py)."""

from explorer.latent.clusters import geometry, images_used, knn_accuracy, report
from explorer.latent.embedding import embed, reference_embeddings

__all__ = ["embed", "geometry", "images_used", "knn_accuracy", "reference_embeddings", "report"]
