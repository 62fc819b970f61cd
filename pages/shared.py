"""What every page shares, loaded once per server and read-only: the models and the bundled test digits."""

import numpy as np
import streamlit as st

from explorer import data, models


@st.cache_resource(show_spinner="Loading the model…")
def load_model(name: str) -> models.ConvNet:
    return models.load(name)


@st.cache_resource
def sample() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 2,000 bundled test digits: uint8 images, labels, test-set indices."""
    return data.load_sample()
