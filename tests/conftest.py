import pytest
import torch

from explorer import data, models


@pytest.fixture(scope="session")
def mnist_test():
    """The full real test set, fetched (and checksum-verified) on first use."""
    return data.load_split("test")


@pytest.fixture(scope="session")
def digits():
    """128 real test digits from the bundled sample, as the attacks take them."""
    images, labels, _ = data.load_sample()
    return data.to_tensor(images[:128]), torch.from_numpy(labels[:128])


@pytest.fixture(scope="session")
def softmax_model():
    return models.load("softmax")
