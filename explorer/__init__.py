"""The explorer: see, and check, whether a network's latent space makes it robust to adversarial attacks."""

__version__ = "0.1.0"
