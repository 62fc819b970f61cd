"""Pictures: digits and perturbations (figures.py), Plotly charts of the results (charts.py), the paper's Figure 1
(gallery.py) and its animated Figure 2 (latent_figure.py)."""
